"""The engine's configuration: every value comes from settings or the environment upstream
(``manage.py sipengine``); nothing here reads either."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import contract
from .registrar import RegistrarConfig
from .security import GuardConfig
from .server import EngineConfig

__all__ = ["CallConfig", "PbxConfig", "parse_hostport"]


@dataclass(slots=True)
class PbxConfig:
    """Everything the engine needs; every value comes from settings/environment upstream."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = ""
    nonce_secret: bytes = b""
    nonce_ttl: float = 300.0
    # The key of the web softphone's credentials (contract.issue_web_credential); b"": the
    # engine accepts none.
    web_secret: bytes = b""
    # Challenge order. MD5 only: baresip/libre, SIPp and others fail on any SHA-256 challenge;
    # a tenant whose snapshot says so gets SHA-256 first, then these.
    digest_algorithms: tuple[str, ...] = ("MD5",)
    guard: GuardConfig = field(default_factory=GuardConfig)
    registrar: RegistrarConfig = field(default_factory=RegistrarConfig)
    event_stream: str = contract.EVENTS
    # Hard cap on the event stream's length (consumers trim what every group acknowledged; the
    # cap only stops a stream whose consumers are gone from filling Redis: see events.py).
    event_stream_cap: int = 1_000_000
    # The call layer (calls.services.CallConfig is built from these).
    rtpengine_ng: tuple[str, int] | None = None  # rtpengine's ng address; None: media direct
    no_answer_timeout: float = 30.0  # ringing before "no answer", unless the extension says
    anchor_all: bool = False  # media of every call through rtpengine (else: NAT or tenant)
    max_forward_hops: int = 5  # call forwarding steps one call may take
    # The media server (telephony/media/): its control address (None: no feature that plays
    # or records, calls to them get 480) and the directory of prompts, music and voicemail.
    media_server: tuple[str, int] | None = None
    media_dir: str = "var/media"
    # Call recording (calls/recording.py): the directory rtpengine writes its pcaps and
    # metadata to (its ``--recording-dir``; "" = no recording), and the address this engine
    # takes rtpengine's DTMF reports on (its ``--dtmf-log-dest``; None: in-call codes only
    # from SIP INFO).
    recording_dir: str = ""
    dtmf_listen: tuple[str, int] | None = None
    # How long an engine's share of the tenants' call counts outlives its last heartbeat: a
    # crashed engine's calls stop counting against the limit after this (calls/limits.py).
    engine_heartbeat_ttl: float = 15.0
    # OPTIONS pings to UDP bindings behind NAT (keepalive.py); 0 turns them off.
    nat_ping_interval: float = 30.0
    nat_ping_failures: int = 2
    # Calls whose audio rtpengine transcodes (an Opus-only browser to a G.711 phone) at once on
    # this engine; one more is refused 488 (transcoding costs CPU, relaying does not).
    max_transcoded_calls: int = 20

    @property
    def engine_id(self) -> str:
        """This engine's name in shared state: the same after a restart, unlike a pid."""
        e = self.engine
        return f"{e.host}:{e.udp_port or e.tcp_port or e.tls_port or e.ws_port or 0}"


def parse_hostport(value: str, default_host: str = "127.0.0.1") -> tuple[str, int] | None:
    """``"host:port"`` (or ``":port"``, ``"port"``) as an address; "" or no port gives None."""
    host, _, port = value.strip().rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return (host or default_host, int(port))


@dataclass(slots=True)
class CallConfig:
    """Call-layer settings (``PbxConfig`` carries them from Django settings, see
    ``manage.py sipengine``)."""

    no_answer_timeout: float = 30.0  # when the extension's snapshot gives none
    rtpengine: tuple[str, int] | None = None  # ng address; None: media always direct
    anchor_all: bool = False  # anchor every call (otherwise: NAT or the tenant's anchor_media)
    mirror_calls: bool = True  # keep sip:calls:<schema> current for the API
    max_forward_hops: int = 5  # forwarding steps one call may take (loop protection)
    engine_heartbeat_ttl: float = 15.0  # see PbxConfig.engine_heartbeat_ttl
    media_server: tuple[str, int] | None = None  # see PbxConfig.media_server
    media_dir: str = "var/media"
    recording_dir: str = ""  # see PbxConfig.recording_dir
    dtmf_listen: tuple[str, int] | None = None  # see PbxConfig.dtmf_listen
    max_transcoded_calls: int = 20  # see PbxConfig.max_transcoded_calls

    @classmethod
    def from_pbx(cls, config: PbxConfig) -> CallConfig:
        return cls(
            no_answer_timeout=config.no_answer_timeout,
            rtpengine=config.rtpengine_ng,
            anchor_all=config.anchor_all,
            max_forward_hops=config.max_forward_hops,
            engine_heartbeat_ttl=config.engine_heartbeat_ttl,
            media_server=config.media_server,
            media_dir=config.media_dir,
            recording_dir=config.recording_dir,
            dtmf_listen=config.dtmf_listen,
            max_transcoded_calls=config.max_transcoded_calls,
        )
