"""The shipped phone families and models: what each device fetches and how to spot it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .formats import FileFormat

__all__ = [
    "FAMILIES",
    "MODELS",
    "FileSpec",
    "PhoneFamily",
    "PhoneModel",
    "ProvisioningError",
    "get_model",
    "identify_user_agent",
]


class ProvisioningError(ValueError):
    """A request or context that the chosen model cannot serve (unknown model or file,
    more lines/keys/handsets than the device has)."""


@dataclass(frozen=True)
class FileSpec:
    """One file a device requests.

    ``pattern`` uses ``{mac}`` for the lower-case MAC and ``{MAC}`` for the upper-case one;
    files without a placeholder are shared by every device of the family and must not
    carry credentials.
    """

    pattern: str
    template: str
    format: FileFormat
    content_type: str

    @property
    def per_device(self) -> bool:
        """Whether the file name carries the device's MAC."""
        return "{mac}" in self.pattern or "{MAC}" in self.pattern

    @property
    def regex(self) -> re.Pattern[str]:
        """Regex matching a requested file name; group ``mac`` holds the MAC."""
        escaped = re.escape(self.pattern)
        escaped = escaped.replace(r"\{mac\}", "(?P<mac>[0-9a-fA-F]{12})")
        escaped = escaped.replace(r"\{MAC\}", "(?P<mac>[0-9a-fA-F]{12})")
        # Phones and DHCP option strings are inconsistent about case; the MAC decides.
        return re.compile(escaped, re.IGNORECASE)

    def filename(self, mac: str) -> str:
        """The file name for device ``mac`` (already normalised)."""
        return self.pattern.replace("{mac}", mac).replace("{MAC}", mac.upper())


def _grandstream_pcodes(account: int) -> Mapping[str, int]:
    # Account 1 predates the numbering scheme; accounts 2-4 are blocks of 100 from P400,
    # accounts 5-6 moved to P1700/P1800 when the 6-account models appeared.
    if account == 1:
        codes = dict(
            active=271,
            account_name=270,
            server=47,
            proxy=48,
            user_id=35,
            auth_id=36,
            password=34,
            display_name=3,
            transport=130,
        )
        return MappingProxyType(codes)
    bases = {2: 400, 3: 500, 4: 600, 5: 1700, 6: 1800}
    if account not in bases:
        raise ProvisioningError(f"the P-value table covers accounts 1-6, not {account}")
    base = bases[account]
    codes = dict(
        active=base + 1,
        server=base + 2,
        proxy=base + 3,
        user_id=base + 4,
        auth_id=base + 5,
        password=base + 6,
        display_name=base + 7,
        account_name=base + 17,
        transport=base + 48,
    )
    return MappingProxyType(codes)


def _grandstream_mpk(key: int) -> Mapping[str, int]:
    # Legacy multi-purpose keys 1-7: mode P323.., then (account, name, value) triples.
    if not 1 <= key <= 7:
        raise ProvisioningError(f"the P-value table covers BLF keys 1-7, not {key}")
    return MappingProxyType(
        dict(mode=322 + key, account=298 + 3 * key, name=299 + 3 * key, value=300 + 3 * key)
    )


_EN = "en"
_LANG_ISO = {k: k for k in ("en", "de", "fr", "es", "it", "pt", "nl", "ru", "zh")}
_LANG_YEALINK = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "ru": "Russian",
    "zh": "Chinese_S",
}
_LANG_SNOM = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Francais",
    "es": "Espanol",
    "it": "Italiano",
    "pt": "Portugues",
    "nl": "Nederlands",
    "ru": "Russian",
    "zh": "Chinese",
}
_LANG_LOCALE = {
    "en": "English_United_States",
    "de": "German_Germany",
    "fr": "French_France",
    "es": "Spanish_Spain",
    "it": "Italian_Italy",
    "pt": "Portuguese_Portugal",
    "nl": "Dutch_Netherlands",
    "ru": "Russian_Russia",
    "zh": "Chinese_China",
}


@dataclass(frozen=True)
class PhoneFamily:
    """Models of one vendor sharing file names and templates."""

    id: str
    vendor: str
    files: tuple[FileSpec, ...]
    languages: Mapping[str, str]
    #: OUIs (first 6 hex digits) used only to break ties between families that request
    #: identically named files (``<mac>.cfg`` is Yealink, Fanvil and Polycom alike).
    ouis: tuple[str, ...] = ()
    #: BLF keys follow the line keys (True) or live on their own key bank (False).
    blf_after_lines: bool = True
    #: Hard limit of BLF keys the shipped template can express, if below the model's.
    max_blf: int | None = None
    #: Extra template variables computed per line / key (vendor numbering tables).
    pcodes: Callable[[int], Mapping[str, int]] | None = None
    mpk: Callable[[int], Mapping[str, int]] | None = None
    #: Served over TFTP only (no HTTP User-Agent to recognise).
    tftp_only: bool = False
    notes: str = ""

    def language(self, code: str) -> str:
        """The vendor's name for ISO language ``code`` (``de``, ``de-AT``), English if unknown."""
        primary = (code or _EN).split("-")[0].split("_")[0].lower()
        return self.languages.get(primary, self.languages[_EN])


@dataclass(frozen=True)
class PhoneModel:
    """One orderable phone model."""

    id: str
    family: PhoneFamily
    name: str
    line_keys: int
    max_accounts: int
    user_agent: re.Pattern[str] | None
    dect: bool = False
    max_handsets: int = 0

    @property
    def vendor(self) -> str:
        """Vendor name shown in the portal."""
        return self.family.vendor

    @property
    def display_name(self) -> str:
        """The model as people name it: "Yealink T46U"."""
        return f"{self.vendor} {self.name}"

    @property
    def files(self) -> tuple[FileSpec, ...]:
        """The files this model requests, per-device file first."""
        return self.family.files

    @property
    def max_blf_keys(self) -> int:
        """How many BLF keys fit beside ``max_accounts`` lines on the shipped template."""
        room = self.line_keys
        return min(room, self.family.max_blf) if self.family.max_blf is not None else room


_XML = "application/xml"
_TEXT = "text/plain"

_YEALINK_COMMON = FileSpec(
    "y000000000000.cfg", "yealink_common.cfg.j2", FileFormat.YEALINK_CFG, _TEXT
)
YEALINK_T = PhoneFamily(
    id="yealink_t",
    vendor="Yealink",
    files=(
        FileSpec("{mac}.cfg", "yealink_t_device.cfg.j2", FileFormat.YEALINK_CFG, _TEXT),
        _YEALINK_COMMON,
    ),
    languages=_LANG_YEALINK,
    ouis=("001565", "805ec0", "805e0c", "249ad8", "44dbd2"),
)
YEALINK_W = PhoneFamily(
    id="yealink_w",
    vendor="Yealink",
    files=(
        FileSpec("{mac}.cfg", "yealink_w_device.cfg.j2", FileFormat.YEALINK_CFG, _TEXT),
        _YEALINK_COMMON,
    ),
    languages=_LANG_YEALINK,
    ouis=YEALINK_T.ouis,
    max_blf=0,
)
FANVIL_X = PhoneFamily(
    id="fanvil_x",
    vendor="Fanvil",
    files=(FileSpec("{mac}.cfg", "fanvil_device.cfg.j2", FileFormat.FANVIL_CFG, _TEXT),),
    languages=_LANG_ISO,
    ouis=("0c383e", "00a859"),
)
GRANDSTREAM = PhoneFamily(
    id="grandstream_gxp",
    vendor="Grandstream",
    files=(FileSpec("cfg{mac}.xml", "grandstream_device.xml.j2", FileFormat.XML, _XML),),
    languages=_LANG_ISO,
    ouis=("000b82", "c074ad", "ec74d7"),
    blf_after_lines=False,
    max_blf=7,
    pcodes=_grandstream_pcodes,
    mpk=_grandstream_mpk,
)
SNOM_D = PhoneFamily(
    id="snom_d",
    vendor="Snom",
    # Snom asks for "{mac}" with the MAC in upper case; the modern D-series convention is
    # "<MAC>.xml" in the setting server directory (the old "snom<model>-<MAC>.htm" name
    # is not used: one name per device keeps the HTTP and TFTP rules identical).
    files=(FileSpec("{MAC}.xml", "snom_d_device.xml.j2", FileFormat.XML, _XML),),
    languages=_LANG_SNOM,
    ouis=("000413",),
)
SNOM_M = PhoneFamily(
    id="snom_m",
    vendor="Snom",
    files=(FileSpec("{MAC}.xml", "snom_m_device.xml.j2", FileFormat.XML, _XML),),
    languages=_LANG_SNOM,
    ouis=("000413",),
    max_blf=0,
)
POLY = PhoneFamily(
    id="poly_vvx",
    vendor="Poly",
    files=(
        FileSpec("{mac}.cfg", "polycom_master.cfg.j2", FileFormat.XML, _XML),
        FileSpec("{mac}-phone.cfg", "polycom_phone.cfg.j2", FileFormat.XML, _XML),
    ),
    languages=_LANG_LOCALE,
    ouis=("0004f2", "64167f", "482567"),
)
CISCO_SPA = PhoneFamily(
    id="cisco_spa",
    vendor="Cisco",
    files=(FileSpec("spa{mac}.xml", "cisco_spa_device.xml.j2", FileFormat.XML, _XML),),
    languages=_LANG_YEALINK | {"zh": "Chinese"},
)
CISCO_79XX = PhoneFamily(
    id="cisco_79xx",
    vendor="Cisco",
    files=(FileSpec("SEP{MAC}.cnf.xml", "cisco_79xx_device.xml.j2", FileFormat.XML, _XML),),
    languages=_LANG_LOCALE,
    tftp_only=True,
    notes="SIP firmware 8.5+/9.x on 7941/7961/7942/7962/7945/7965; fetched over TFTP.",
)
HTEK = PhoneFamily(
    id="htek_uc",
    vendor="Htek",
    files=(FileSpec("cfg{mac}.xml", "htek_device.xml.j2", FileFormat.XML, _XML),),
    languages=_LANG_ISO,
    ouis=("001fc1",),
    blf_after_lines=False,
    max_blf=7,
    pcodes=_grandstream_pcodes,
    mpk=_grandstream_mpk,
    notes="Htek's XML reuses Grandstream-compatible P-value numbers for accounts and keys.",
)

FAMILIES: Mapping[str, PhoneFamily] = MappingProxyType(
    {
        f.id: f
        for f in (YEALINK_T, YEALINK_W, FANVIL_X, GRANDSTREAM, SNOM_D, SNOM_M, POLY)
        + (CISCO_SPA, CISCO_79XX, HTEK)
    }
)


def _ua(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _model(
    family: PhoneFamily,
    name: str,
    line_keys: int,
    max_accounts: int,
    ua: str | None,
    *,
    handsets: int = 0,
) -> PhoneModel:
    model_id = f"{family.vendor}-{name}".lower().replace(" ", "-").replace("_", "-")
    return PhoneModel(
        id=model_id,
        family=family,
        name=name,
        line_keys=line_keys,
        max_accounts=max_accounts,
        user_agent=_ua(ua) if ua else None,
        dect=handsets > 0,
        max_handsets=handsets,
    )


_MODEL_LIST = (
    # Yealink T-series: "Yealink SIP-T54W 96.86.0.70"
    *(
        _model(YEALINK_T, name, keys, accounts, rf"\bYealink SIP-{name}\b")
        for name, keys, accounts in (
            ("T31P", 2, 2),
            ("T33G", 4, 4),
            ("T43U", 21, 12),
            ("T46U", 27, 16),
            ("T48U", 29, 16),
            ("T53W", 21, 12),
            ("T54W", 27, 16),
            ("T57W", 29, 16),
        )
    ),
    # Yealink DECT bases: "Yealink W60B 77.85.0.25" (one account per handset)
    _model(YEALINK_W, "W60B", 0, 8, r"\bYealink (?:SIP-)?W60B\b", handsets=8),
    _model(YEALINK_W, "W70B", 0, 10, r"\bYealink (?:SIP-)?W70B\b", handsets=10),
    # Fanvil X-series: "Fanvil X6U 2.12.1 ..."
    *(
        _model(FANVIL_X, name, keys, accounts, rf"\bFanvil {name}\b")
        for name, keys, accounts in (
            ("X3U", 6, 6),
            ("X4U", 12, 12),
            ("X5U", 30, 16),
            ("X6U", 60, 20),
            ("X7", 112, 20),
        )
    ),
    # Grandstream: "Grandstream Model HW GXP2170 SW 1.0.11.3 DevId 000b82..."
    *(
        _model(GRANDSTREAM, name, keys, accounts, rf"\bGrandstream Model HW {name}\b")
        for name, keys, accounts in (
            ("GXP2160", 24, 6),
            ("GXP2170", 48, 6),
            ("GRP2612", 4, 2),
            ("GRP2614", 24, 4),
            ("GRP2616", 24, 6),
        )
    ),
    # Snom desk phones: "Mozilla/4.0 (compatible; snomD785-SIP 10.1.54.13 ...)"
    *(
        _model(SNOM_D, name, keys, accounts, rf"\bsnom{name}-SIP\b")
        for name, keys, accounts in (
            ("D715", 4, 4),
            ("D735", 32, 12),
            ("D785", 24, 12),
            ("D865", 40, 12),
        )
    ),
    # Snom DECT bases: UA "Snom-M900/..." or "snomM700"
    _model(SNOM_M, "M300", 0, 20, r"\bsnom[-_ ]?M300\b", handsets=20),
    _model(SNOM_M, "M700", 0, 30, r"\bsnom[-_ ]?M700\b", handsets=30),
    _model(SNOM_M, "M900", 0, 100, r"\bsnom[-_ ]?M900\b", handsets=100),
    # Poly: "FileTransport PolycomVVX-VVX_450-UA/6.4.3", "... PolyEdge-Edge_E450-UA/..."
    *(
        _model(POLY, name, keys, accounts, ua)
        for name, keys, accounts, ua in (
            ("VVX 250", 4, 4, r"PolycomVVX-VVX_250-UA/"),
            ("VVX 350", 6, 6, r"PolycomVVX-VVX_350-UA/"),
            ("VVX 450", 12, 12, r"PolycomVVX-VVX_450-UA/"),
            ("Edge E350", 8, 8, r"Poly(?:com)?Edge-Edge_E350-UA/"),
            ("Edge E450", 12, 12, r"Poly(?:com)?Edge-Edge_E450-UA/"),
        )
    ),
    # Cisco SPA: "Cisco/SPA504G-7.6.2"
    *(
        _model(CISCO_SPA, name, keys, accounts, rf"\bCisco/{name}-")
        for name, keys, accounts in (
            ("SPA303", 3, 3),
            ("SPA504G", 4, 4),
            ("SPA508G", 8, 8),
            ("SPA525G2", 5, 5),
        )
    ),
    # Cisco 79xx on SIP firmware fetch SEP<MAC>.cnf.xml over TFTP: no HTTP User-Agent.
    *(
        _model(CISCO_79XX, name, keys, accounts, None)
        for name, keys, accounts in (
            ("7941G", 2, 2),
            ("7942G", 2, 2),
            ("7945G", 2, 2),
            ("7961G", 6, 6),
            ("7962G", 6, 6),
            ("7965G", 6, 6),
        )
    ),
    # Htek: "Htek UC926 2.0.4.4.46 ..."
    *(
        _model(HTEK, name, keys, accounts, rf"\bHtek {name}\b")
        for name, keys, accounts in (
            ("UC912", 2, 2),
            ("UC924", 4, 4),
            ("UC926", 6, 6),
        )
    ),
)

MODELS: Mapping[str, PhoneModel] = MappingProxyType({m.id: m for m in _MODEL_LIST})


def get_model(model_id: str) -> PhoneModel:
    """The shipped model ``model_id``; :class:`ProvisioningError` if there is none."""
    try:
        return MODELS[model_id]
    except KeyError:
        raise ProvisioningError(f"unknown phone model {model_id!r}") from None


def identify_user_agent(user_agent: str) -> PhoneModel | None:
    """The model announcing itself with HTTP/SIP ``user_agent``, or ``None``."""
    for model in MODELS.values():
        if model.user_agent is not None and model.user_agent.search(user_agent or ""):
            return model
    return None
