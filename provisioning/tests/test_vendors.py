"""Shipped templates render, parse and carry the right data for every model."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioning.vendors import (
    MODELS,
    BlfKey,
    Branding,
    FileFormat,
    Line,
    ProvisioningContext,
    ProvisioningError,
    RequestMatch,
    files_for,
    identify_user_agent,
    match_request,
    match_request_all,
    normalize_mac,
    render,
    render_source,
    resolve_settings,
    sample_context,
    setting_values,
    template_source,
    time_zone_info,
    validate_template,
)
from provisioning.vendors.formats import parse_fanvil_cfg, parse_xml, parse_yealink_cfg
from provisioning.vendors.registry import PhoneModel

MAC = "001565a1b2c3"
TZ = "America/New_York"


@dataclass
class Account:
    user: str
    auth: str
    password: str
    domain: str
    display: str


@dataclass
class Parsed:
    """What a phone would take from its files, vendor notation stripped away."""

    accounts: dict[int, Account] = field(default_factory=dict)
    blf: list[tuple[str, str]] = field(default_factory=list)
    handsets: dict[int, int] = field(default_factory=dict)
    time_zone: str = ""


def make_context(model: PhoneModel, **overrides: object) -> ProvisioningContext:
    count = min(model.max_accounts, 3)
    lines = [
        Line(
            index=n,
            extension=f"1{n:02d}",
            display_name=f"User {n}",
            auth_user=f"auth{n}",
            password=f"pw-{n}-x",
            label=f"L{n}",
        )
        for n in range(1, count + 1)
    ]
    room = model.max_blf_keys - (count if model.family.blf_after_lines else 0)
    blf = [BlfKey(label=f"Desk {n}", extension=f"20{n}") for n in range(1, min(2, room) + 1)]
    # Crossed on purpose: handset 1 carries line 2, so an index mix-up shows.
    handsets = {1: 2, 2: 1} if model.dect else {}
    values: dict[str, object] = dict(
        mac=MAC,
        model_id=model.id,
        lines=lines,
        sip_domain="acme.pbx.example",
        sip_server="sip.pbx.example",
        sip_port=5080,
        transport="tcp",
        time_zone=TZ,
        language="de",
        ntp_server="ntp.acme.example",
        blf_keys=blf,
        firmware_url="https://fw.example/fw.bin",
        branding=Branding("Acme Phone", "https://cdn.example/l.png", "https://cdn.example/b.jpg"),
        provisioning_url="https://pbx.example/prov/Zx9/",
        admin_password="adm1n",
        handsets=handsets,
    )
    values.update(overrides)
    return ProvisioningContext(**values)  # type: ignore[arg-type]


def render_all(ctx: ProvisioningContext) -> dict[str, str]:
    return {
        name: render(ctx.model_id, name, ctx).content.decode("utf-8")
        for name in files_for(ctx.model_id, ctx.mac)
    }


def _xml_text(root: ET.Element, path: str) -> str:
    node = root.find(path)
    assert node is not None, path
    return node.text or ""


def _idx(root: ET.Element, tag: str) -> dict[int, str]:
    return {int(e.get("idx", "0")): e.text or "" for e in root.iter(tag)}


def parse_files(model: PhoneModel, files: dict[str, str]) -> Parsed:  # noqa: C901
    family = model.family.id
    out = Parsed()
    if family in ("yealink_t", "yealink_w"):
        device = parse_yealink_cfg(files[f"{MAC}.cfg"])
        common = parse_yealink_cfg(files["y000000000000.cfg"])
        for n in range(1, 17):
            if f"account.{n}.enable" in device:
                out.accounts[n] = Account(
                    device[f"account.{n}.user_name"],
                    device[f"account.{n}.auth_name"],
                    device[f"account.{n}.password"],
                    device[f"account.{n}.sip_server.1.address"],
                    device[f"account.{n}.display_name"],
                )
        keys = sorted(k.split(".")[1] for k in device if k.endswith(".type"))
        out.blf = [
            (device[f"linekey.{k}.label"], device[f"linekey.{k}.value"])
            for k in sorted(keys, key=int)
            if device[f"linekey.{k}.type"] == "16"
        ]
        out.handsets = {
            int(k.split(".")[1]): int(v) for k, v in device.items() if k.endswith("incoming_lines")
        }
        out.time_zone = common["local_time.time_zone"]
    elif family == "fanvil_x":
        cfg = parse_fanvil_cfg(files[f"{MAC}.cfg"])
        sip = "<SIP CONFIG MODULE>/SIP"
        for n in range(1, 21):
            if f"{sip}{n} Phone Number" in cfg:
                out.accounts[n] = Account(
                    cfg[f"{sip}{n} Phone Number"],
                    cfg[f"{sip}{n} Register User"],
                    cfg[f"{sip}{n} Register Pswd"],
                    cfg[f"{sip}{n} Register Addr"],
                    cfg[f"{sip}{n} Display Name"],
                )
        dss = "<DSS CONFIG MODULE>/Fkey"
        for n in range(1, 113):
            if f"{dss}{n} Type" in cfg:
                out.blf.append((cfg[f"{dss}{n} Title"], cfg[f"{dss}{n} Value"].split("@")[0]))
        out.time_zone = cfg["<GLOBAL CONFIG MODULE>/Time Zone Name"]
    elif family in ("grandstream_gxp", "htek_uc"):
        name = f"cfg{MAC}.xml"
        config = parse_xml(files[name]).find("config")
        assert config is not None
        pcodes, mpk = model.family.pcodes, model.family.mpk
        assert pcodes is not None
        assert mpk is not None
        for n in range(1, 7):
            p = pcodes(n)
            if config.find(f"P{p['active']}") is not None:
                server = _xml_text(config, f"P{p['server']}")
                out.accounts[n] = Account(
                    _xml_text(config, f"P{p['user_id']}"),
                    _xml_text(config, f"P{p['auth_id']}"),
                    _xml_text(config, f"P{p['password']}"),
                    server.rsplit(":", 1)[0],
                    _xml_text(config, f"P{p['display_name']}"),
                )
        for k in range(1, 8):
            codes = mpk(k)
            if config.find(f"P{codes['mode']}") is not None:
                out.blf.append(
                    (
                        _xml_text(config, f"P{codes['name']}"),
                        _xml_text(config, f"P{codes['value']}"),
                    )
                )
        out.time_zone = _xml_text(config, "P246" if family == "grandstream_gxp" else "P64")
    elif family == "snom_d":
        root = parse_xml(files[f"{MAC.upper()}.xml"])
        users, auths = _idx(root, "user_name"), _idx(root, "user_pname")
        pws, hosts, names = (
            _idx(root, "user_pass"),
            _idx(root, "user_host"),
            _idx(root, "user_realname"),
        )
        for n in users:
            out.accounts[n] = Account(users[n], auths[n], pws[n], hosts[n].split(":")[0], names[n])
        for fkey in root.iter("fkey"):
            ext = (fkey.text or "").removeprefix("blf <sip:").split("@")[0]
            out.blf.append((fkey.get("label", ""), ext))
        out.time_zone = _xml_text(root, "phone-settings/timezone")
    elif family == "snom_m":
        root = parse_xml(files[f"{MAC.upper()}.xml"])
        domain = _xml_text(root, "servers/srv_sip_ua_data_server_domain")
        users, auths = _idx(root, "subscr_ua_data_username"), _idx(root, "subscr_ua_data_auth_name")
        pws, names = (
            _idx(root, "subscr_ua_data_password"),
            _idx(root, "subscr_ua_data_display_name"),
        )
        for n in users:
            out.accounts[n] = Account(users[n], auths[n], pws[n], domain, names[n])
        out.handsets = {int(v): n for n, v in _idx(root, "subscr_sip_hs_idx").items()}
        out.time_zone = _xml_text(root, "global/timezone")
    elif family == "poly_vvx":
        master = parse_xml(files[f"{MAC}.cfg"])
        assert master.get("CONFIG_FILES") == f"{MAC}-phone.cfg"
        root = parse_xml(files[f"{MAC}-phone.cfg"])
        for reg in root.iter("reg"):
            n = int(next(iter(reg.attrib)).split(".")[1])
            a = {k.split(".", 2)[2]: v for k, v in reg.attrib.items()}
            out.accounts[n] = Account(
                a["address"],
                a["auth.userId"],
                a["auth.password"],
                a["server.1.address"],
                a["displayName"],
            )
        attendant = root.find("attendant")
        assert attendant is not None
        k = 1
        while f"attendant.resourceList.{k}.address" in attendant.attrib:
            address = attendant.get(f"attendant.resourceList.{k}.address", "")
            out.blf.append(
                (attendant.get(f"attendant.resourceList.{k}.label", ""), address.split("@")[0])
            )
            k += 1
        sntp = root.find("tcpIpApp")
        assert sntp is not None
        out.time_zone = sntp.get("tcpIpApp.sntp.gmtOffset", "")
    elif family == "cisco_spa":
        root = parse_xml(files[f"spa{MAC}.xml"])
        for n in range(1, 9):
            if root.find(f"Line_Enable_{n}_") is not None:
                out.accounts[n] = Account(
                    _xml_text(root, f"User_ID_{n}_"),
                    _xml_text(root, f"Auth_ID_{n}_"),
                    _xml_text(root, f"Password_{n}_"),
                    _xml_text(root, f"Proxy_{n}_").split(":")[0],
                    _xml_text(root, f"Display_Name_{n}_"),
                )
            fn = root.find(f"Extended_Function_{n}_")
            if fn is not None:
                sub = dict(part.split("=", 1) for part in (fn.text or "").split(";"))
                out.blf.append((sub["nme"], sub["sub"].split("@")[0]))
        out.time_zone = _xml_text(root, "Time_Zone")
    elif family == "cisco_79xx":
        root = parse_xml(files[f"SEP{MAC.upper()}.cnf.xml"])
        domain = _xml_text(
            root, "devicePool/callManagerGroup/members/member/callManager/processNodeName"
        )
        for line in root.iter("line"):
            if _xml_text(line, "featureID") == "9":
                out.accounts[int(line.get("button", "0"))] = Account(
                    _xml_text(line, "name"),
                    _xml_text(line, "authName"),
                    _xml_text(line, "authPassword"),
                    domain,
                    _xml_text(line, "displayName"),
                )
            else:
                out.blf.append(
                    (_xml_text(line, "featureLabel"), _xml_text(line, "speedDialNumber"))
                )
        out.time_zone = _xml_text(root, "devicePool/dateTimeSetting/timeZone")
    else:  # pragma: no cover - a new family needs a reader here
        raise AssertionError(f"no reader for {family}")
    return out


EXPECTED_TZ = {
    "yealink_t": "-5",
    "yealink_w": "-5",
    "fanvil_x": "EST5EDT,M3.2.0,M11.1.0",
    "grandstream_gxp": "EST5EDT,M3.2.0,M11.1.0",
    "htek_uc": "EST5EDT,M3.2.0,M11.1.0",
    "snom_d": "USA-5",
    "snom_m": "USA-5",
    "poly_vvx": "-18000",
    "cisco_spa": "GMT-05:00",
    "cisco_79xx": "Eastern Standard/Daylight Time",
}

ALL_MODELS = sorted(MODELS)


@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_every_file_parses_and_carries_the_accounts(model_id: str) -> None:
    model = MODELS[model_id]
    ctx = make_context(model)
    files = render_all(ctx)
    assert set(files) == set(files_for(model_id, MAC))
    parsed = parse_files(model, files)
    assert sorted(parsed.accounts) == [line.index for line in ctx.lines]
    for line in ctx.lines:
        account = parsed.accounts[line.index]
        assert account == Account(
            line.extension, line.auth_user, line.password, "acme.pbx.example", line.display_name
        )
    assert parsed.blf == [(key.label, key.extension) for key in ctx.blf_keys]
    assert parsed.time_zone == EXPECTED_TZ[model.family.id]
    if model.dect:
        assert parsed.handsets == {1: 2, 2: 1}


@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_every_file_mentions_server_settings(model_id: str) -> None:
    model = MODELS[model_id]
    files = render_all(make_context(model))
    everything = "\n".join(files.values())
    assert "ntp.acme.example" in everything
    assert "sip.pbx.example" in everything  # the SIP server becomes the outbound proxy
    assert "adm1n" in everything
    if not model.family.tftp_only:
        assert "https://pbx.example/prov/Zx9/" in everything


def test_yealink_common_file_has_no_credentials() -> None:
    ctx = make_context(MODELS["yealink-t54w"])
    common = render("yealink-t54w", "y000000000000.cfg", ctx).content.decode()
    for line in ctx.lines:
        assert line.password not in common
    assert parse_yealink_cfg(common)["lang.gui"] == "German"


def test_blf_keys_follow_the_line_keys_on_yealink() -> None:
    ctx = make_context(MODELS["yealink-t54w"])
    cfg = parse_yealink_cfg(render("yealink-t54w", f"{MAC}.cfg", ctx).content.decode())
    assert cfg["linekey.4.type"] == "16"
    assert cfg["linekey.4.value"] == "201"
    assert cfg["linekey.5.value"] == "202"


def test_dect_handset_mapping_on_yealink_and_snom() -> None:
    for model_id in ("yealink-w70b", "snom-m900"):
        model = MODELS[model_id]
        ctx = make_context(model, handsets={3: 3, 1: 1})
        assert parse_files(model, render_all(ctx)).handsets == {1: 1, 3: 3}


XML_MODELS = [m for m in ALL_MODELS if MODELS[m].files[0].format is FileFormat.XML]
CFG_MODELS = [m for m in ALL_MODELS if MODELS[m].files[0].format is not FileFormat.XML]
NASTY = 'Ann <b>&amp; "Bob"\' </settings>'


@pytest.mark.parametrize("model_id", XML_MODELS)
def test_xml_special_characters_are_escaped(model_id: str) -> None:
    model = MODELS[model_id]
    base = make_context(model)
    first = replace(base.lines[0], display_name=NASTY, password='p<&">', label="x&y")
    ctx = replace(base, lines=(first, *base.lines[1:]), admin_password="a&<b>")
    files = render_all(ctx)
    for text in files.values():
        assert NASTY not in text
        parse_xml(text)  # still well-formed
    account = parse_files(model, files).accounts[1]
    assert account.display == NASTY
    assert account.password == 'p<&">'


@pytest.mark.parametrize("model_id", CFG_MODELS)
def test_newline_in_display_name_cannot_inject_a_key(model_id: str) -> None:
    model = MODELS[model_id]
    base = make_context(model)
    evil = (
        "Eve\naccount.1.password = hacked\r\nSIP1 Register Pswd :hacked"
        "\u2028static.security.user_password = admin:x\x00"
    )
    first = replace(base.lines[0], display_name=evil, label=evil)
    ctx = replace(base, lines=(first, *base.lines[1:]))
    files = render_all(ctx)
    parsed = parse_files(model, files)  # parsers reject duplicate keys
    assert parsed.accounts[1].password == "pw-1-x"
    assert "\n" not in parsed.accounts[1].display
    assert parsed.accounts[1].display.startswith("Eve account.1.password = hacked")
    for text in files.values():
        assert "\nstatic.security.user_password = admin:x" not in text


@given(st.text(max_size=40))
def test_any_display_name_keeps_cfg_lines_intact(name: str) -> None:
    base = sample_context("yealink-t54w")
    ctx = replace(base, lines=(replace(base.lines[0], display_name=name), *base.lines[1:]))
    cfg = parse_yealink_cfg(render("yealink-t54w", f"{base.mac}.cfg", ctx).content.decode())
    assert cfg["account.1.password"] == base.lines[0].password
    assert (
        cfg["account.1.display_name"]
        == "".join(
            " " if (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029") else c
            for c in name
        ).strip()
    )


# --- context validation and fit to the model ---------------------------------------------


def test_context_rejects_bad_values() -> None:
    ctx = sample_context("yealink-t54w")
    with pytest.raises(ValueError, match="transport"):
        replace(ctx, transport="sctp")
    with pytest.raises(ValueError, match="time zone"):
        replace(ctx, time_zone="Mars/Olympus")
    with pytest.raises(ValueError, match="missing line"):
        replace(ctx, handsets={1: 9})
    with pytest.raises(ValueError, match="duplicate"):
        replace(ctx, lines=(ctx.lines[0], ctx.lines[0]))


def test_render_refuses_what_the_model_cannot_take() -> None:
    ctx = make_context(MODELS["yealink-t31p"])
    too_many = [Line(n, f"1{n}", "", f"1{n}", "pw") for n in range(1, 4)]
    with pytest.raises(ProvisioningError, match="accounts"):
        render("yealink-t31p", f"{MAC}.cfg", replace(ctx, lines=too_many))
    with pytest.raises(ProvisioningError, match="BLF"):
        render("yealink-t31p", f"{MAC}.cfg", replace(ctx, blf_keys=[BlfKey("a", "1")] * 3))
    with pytest.raises(ProvisioningError, match="DECT"):
        render("yealink-t31p", f"{MAC}.cfg", replace(ctx, handsets={1: 1}))
    with pytest.raises(ProvisioningError, match="not a file of device"):
        render("yealink-t31p", "001565000099.cfg", ctx)
    with pytest.raises(ProvisioningError, match="does not request"):
        render("yealink-t31p", f"cfg{MAC}.xml", ctx)
    with pytest.raises(ProvisioningError, match="unknown phone model"):
        render("nokia-3310", f"{MAC}.cfg", ctx)
    with pytest.raises(ProvisioningError, match="context is for"):
        render("yealink-t33g", f"{MAC}.cfg", ctx)


def test_render_returns_content_type_and_canonical_name() -> None:
    ctx = make_context(MODELS["cisco-7961g"])
    rendered = render("cisco-7961g", f"/tftp/sep{MAC}.cnf.xml", ctx)
    assert rendered.filename == f"SEP{MAC.upper()}.cnf.xml"
    assert rendered.content_type == "application/xml; charset=utf-8"
    assert render(
        "yealink-t54w", f"{MAC}.cfg", make_context(MODELS["yealink-t54w"])
    ).content_type == ("text/plain; charset=utf-8")


# --- files_for, match_request, user agents -------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("yealink-t54w", [f"{MAC}.cfg", "y000000000000.cfg"]),
        ("yealink-w60b", [f"{MAC}.cfg", "y000000000000.cfg"]),
        ("fanvil-x6u", [f"{MAC}.cfg"]),
        ("grandstream-gxp2170", [f"cfg{MAC}.xml"]),
        ("snom-d785", ["001565A1B2C3.xml"]),
        ("snom-m700", ["001565A1B2C3.xml"]),
        ("poly-vvx-450", [f"{MAC}.cfg", f"{MAC}-phone.cfg"]),
        ("cisco-spa504g", [f"spa{MAC}.xml"]),
        ("cisco-7961g", ["SEP001565A1B2C3.cnf.xml"]),
        ("htek-uc926", [f"cfg{MAC}.xml"]),
    ],
)
def test_files_for(model_id: str, expected: list[str]) -> None:
    assert files_for(model_id, "00:15:65:A1:B2:C3") == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/001565a1b2c3.cfg", RequestMatch("yealink_t", "001565a1b2c3")),
        ("/prov/Zx9/y000000000000.cfg", RequestMatch("yealink_t", None)),
        ("0c383e123456.cfg", RequestMatch("fanvil_x", "0c383e123456")),
        ("/0004f2abcdef.cfg", RequestMatch("poly_vvx", "0004f2abcdef")),
        ("0004f2abcdef-phone.cfg", RequestMatch("poly_vvx", "0004f2abcdef")),
        ("cfg000b82123456.xml", RequestMatch("grandstream_gxp", "000b82123456")),
        ("cfg001fc1123456.xml", RequestMatch("htek_uc", "001fc1123456")),
        ("/000413A1B2C3.xml", RequestMatch("snom_d", "000413a1b2c3")),
        ("SEP001565A1B2C3.cnf.xml", RequestMatch("cisco_79xx", "001565a1b2c3")),
        ("spa001565a1b2c3.xml", RequestMatch("cisco_spa", "001565a1b2c3")),
        ("/prov/x/spa001565a1b2c3.xml?ver=2", RequestMatch("cisco_spa", "001565a1b2c3")),
    ],
)
def test_match_request(path: str, expected: RequestMatch) -> None:
    assert match_request(path) == expected
    family, mac = match_request(path) or ("", "")
    assert (family, mac) == tuple(expected)


@pytest.mark.parametrize(
    "path",
    [
        "/index.html",
        "../../etc/passwd",
        "000000000000.cfg",
        "ffffffffffff.cfg",
        "cfg001565a1b2.xml",
        "SEP001565A1B2C3.cnf",
        "",
    ],
)
def test_match_request_rejects(path: str) -> None:
    assert match_request(path) is None


def test_match_request_all_lists_every_candidate() -> None:
    families = {m.family for m in match_request_all("001565a1b2c3.cfg")}
    assert families == {"yealink_t", "yealink_w", "fanvil_x", "poly_vvx"}
    assert {m.family for m in match_request_all("001565A1B2C3.xml")} == {"snom_d", "snom_m"}


@pytest.mark.parametrize(
    ("user_agent", "model_id"),
    [
        ("Yealink SIP-T54W 96.86.0.70 80:5e:c0:12:34:56", "yealink-t54w"),
        ("Yealink W60B 77.85.0.25", "yealink-w60b"),
        ("Fanvil X6U 2.12.1 0c383e123456", "fanvil-x6u"),
        ("Grandstream Model HW GXP2170 SW 1.0.11.3 DevId 000b82123456", "grandstream-gxp2170"),
        ("Mozilla/4.0 (compatible; snomD785-SIP 10.1.54.13 1.1.3-s)", "snom-d785"),
        ("Snom-M900/530", "snom-m900"),
        ("FileTransport PolycomVVX-VVX_450-UA/6.4.3.5003", "poly-vvx-450"),
        ("FileTransport PolyEdge-Edge_E450-UA/8.0.1", "poly-edge-e450"),
        ("Cisco/SPA504G-7.6.2", "cisco-spa504g"),
        ("Htek UC926 2.0.4.4.46 001fc1123456", "htek-uc926"),
    ],
)
def test_identify_user_agent(user_agent: str, model_id: str) -> None:
    model = identify_user_agent(user_agent)
    assert model is not None
    assert model.id == model_id


def test_identify_user_agent_unknown() -> None:
    assert identify_user_agent("curl/8.0") is None
    assert identify_user_agent("Yealink SIP-T54WX 1.0") is None


# --- MAC addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["00:15:65:A1:B2:C3", "00-15-65-a1-b2-c3", "0015.65a1.b2c3", "001565a1b2c3", " 001565A1B2C3 "],
)
def test_normalize_mac_accepts(text: str) -> None:
    assert normalize_mac(text) == "001565a1b2c3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("001565a1b2", "10 hex digits"),
        ("001565a1b2c3d4", "14 hex digits"),
        ("00156za1b2c3", "non-hex character 'z'"),
        ("00:15:65-a1:b2:c3", "recognised form"),
        ("00:15:65:a1:b2", "recognised form"),
        ("01:00:5e:00:00:fb", "multicast"),
        ("ff:ff:ff:ff:ff:ff", "broadcast"),
        ("000000000000", "all zeros"),
        ("", "empty"),
    ],
)
def test_normalize_mac_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_mac(text)


# --- time zones --------------------------------------------------------------------------------


def test_time_zone_notations() -> None:
    india = time_zone_info("Asia/Kolkata")
    assert (india.offset_hours, india.gmt_offset, india.dst) == ("+5:30", "GMT+05:30", False)
    assert india.posix == "IST-5:30"
    berlin = time_zone_info("Europe/Berlin")
    assert (berlin.offset_seconds, berlin.dst, berlin.vendor_name("yealink")) == (
        3600,
        True,
        "Germany(Berlin)",
    )
    assert time_zone_info("UTC").offset_hours == "0"
    assert time_zone_info("Pacific/Chatham").vendor_name("snom") == ""


# --- layered settings --------------------------------------------------------------------------


def test_resolve_settings_most_specific_layer_wins() -> None:
    resolved = resolve_settings(
        [
            ("system", {"ntp_server": "pool.ntp.org", "time_zone": "UTC", "language": "en"}),
            ("dealer", {"ntp_server": "ntp.dealer.example"}),
            ("tenant", {"time_zone": "Europe/Berlin", "language": None}),
            ("model", {"backlight": 3}),
            ("device", {"ntp_server": "10.0.0.1", "backlight": None}),
        ]
    )
    assert resolved["ntp_server"] == ("10.0.0.1", "device")
    assert resolved["time_zone"] == ("Europe/Berlin", "tenant")
    assert resolved["language"] == ("en", "system")  # None inherits
    assert resolved["backlight"].source == "model"
    assert setting_values(resolved)["backlight"] == 3
    assert list(resolved) == ["ntp_server", "time_zone", "language", "backlight"]


def test_templates_see_resolved_settings() -> None:
    resolved = resolve_settings(
        [
            ("system", {"blf_pickup_code": "*8", "idle_text": "Sys"}),
            ("tenant", {"idle_text": "Acme"}),
        ]
    )
    ctx = replace(sample_context("yealink-t54w"), settings=setting_values(resolved))
    cfg = parse_yealink_cfg(render("yealink-t54w", f"{ctx.mac}.cfg", ctx).content.decode())
    assert cfg["linekey.3.pickup_value"] == "*8201"
    source = "#!version:1.0.0.1\nphone_setting.idle_text = {{ settings.idle_text }}\n"
    custom = render_source(source, "yealink-t54w", "{mac}.cfg", ctx).content.decode()
    assert parse_yealink_cfg(custom) == {"phone_setting.idle_text": "Acme"}
    # Context fields are authoritative over a stale copy in settings.
    ctx2 = replace(ctx, settings={"ntp_server": "stale"}, ntp_server="fresh")
    common = render("yealink-t54w", "y000000000000.cfg", ctx2).content.decode()
    assert parse_yealink_cfg(common)["local_time.ntp_server1"] == "fresh"


# --- custom templates --------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_shipped_templates_validate(model_id: str) -> None:
    for spec in MODELS[model_id].files:
        assert (
            validate_template(template_source(model_id, spec.pattern), model_id, spec.pattern) == []
        )


def test_validate_template_catches_a_syntax_error() -> None:
    errors = validate_template("<settings>{% for x in lines %}</settings>", "snom-d785")
    assert len(errors) == 1
    assert "syntax error" in errors[0]
    assert errors[0].startswith("line 1")


def test_validate_template_catches_an_undefined_variable() -> None:
    errors = validate_template("#!version:1.0.0.1\na = {{ ctx.no_such_field }}\n", "yealink-t54w")
    assert errors
    assert "no_such_field" in errors[0]
    errors = validate_template("#!version:1.0.0.1\na = {{ nothing }}\n", "yealink-t54w")
    assert errors
    assert "'nothing' is undefined" in errors[0]


def test_validate_template_catches_malformed_xml() -> None:
    errors = validate_template("<settings><a></settings>", "snom-d785")
    assert errors
    assert "not well-formed" in errors[0]
    # Turning escaping off lets the sample's "<&" through: caught as broken XML.
    unsafe = "<settings><n>{{ lines[0].display_name|safe }}</n></settings>"
    assert validate_template(unsafe, "grandstream-gxp2170")


def test_validate_template_catches_unreadable_cfg_lines() -> None:
    assert validate_template("account.1.enable = 1\n", "yealink-t54w")  # no version header
    errors = validate_template("#!version:1.0.0.1\nthis is not a setting\n", "yealink-t54w")
    assert errors
    assert "line 2" in errors[0]
    errors = validate_template("#!version:1.0.0.1\na = 1\na = 2\n", "yealink-t54w")
    assert errors
    assert "twice" in errors[0]
    assert validate_template("<<VOIP CONFIG FILE>>\n<S>\nK :v\n", "fanvil-x6u")


def test_validate_template_blocks_sandbox_escapes() -> None:
    for source in (
        "#!version:1.0.0.1\na = {{ ctx.__class__.__mro__ }}\n",
        "#!version:1.0.0.1\na = {{ lines.append(1) }}\n",
        "#!version:1.0.0.1\n{% for i in range(10**7) %}{% endfor %}\n",
    ):
        assert validate_template(source, "yealink-t54w"), source


def test_render_source_escapes_like_shipped_templates() -> None:
    ctx = sample_context("snom-d785")
    source = template_source("snom-d785").replace("<settings>", "<settings><!-- cloned -->", 1)
    assert validate_template(source, "snom-d785") == []
    out = render_source(source, "snom-d785", f"{ctx.mac.upper()}.xml", ctx).content.decode()
    assert "<!-- cloned -->" in out
    assert _idx(parse_xml(out), "user_realname")[1] == ctx.lines[0].display_name


def test_render_source_caps_output() -> None:
    ctx = sample_context("yealink-t54w")
    source = "#!version:1.0.0.1\n{% for i in range(99999) %}{{ 'x' * 99 }}\n{% endfor %}"
    with pytest.raises(ProvisioningError, match="exceeds"):
        render_source(source, "yealink-t54w", "{mac}.cfg", ctx)
