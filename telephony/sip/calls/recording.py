"""Call recording through rtpengine: when a call's recording starts, pauses, resumes and
stops, and the finished file announced to the Django side.

rtpengine records in userspace (``--recording-method=pcap --recording-dir=<dir>``): one pcap
per "start recording" under ``<dir>/pcaps/<rtpengine call-id>-<random>.pcap``, with a
metadata file ``<dir>/metadata/rtpengine-meta-<call-id>-<random>.txt`` (its first line is the
pcap's path) that stays ``<dir>/tmp/...tmp`` until the recording is stopped or the call
deleted. rtpengine 10.5 has no "pause recording": a pause is a "stop recording", a resume a
new "start recording" (a new pcap); when the call ends the parts are joined, in time order,
into one ``<dir>/pcaps/<our call id>.pcap``, so each call's recording is one file and one
``recording.ready`` event.

A two-party call whose parties' strongest policy (``record_policy.py``) is ``always`` or
``on_demand`` is anchored from the start; ``always`` starts recording at the answer,
``on_demand`` when a party keys the tenant's RECORD_START code (``*44``) or the API sends
``RecordCall``. The in-call codes come from rtpengine's DTMF reports (RFC 2833 events:
``--dtmf-log-dest``, one JSON datagram per key with the rtpengine call-id and the tag of the
party that keyed it) and from SIP INFO (``bridge.py``); each party's keys are collected with
an inter-digit timeout and matched against the tenant's codes, all in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telephony.sip.config import CallConfig
from telephony.sip.context import EngineContext
from telephony.sip.contract import (
    EventType,
    Feature,
    RecordCall,
    RecordingAction,
    RecordingPolicy,
)
from telephony.sip.media import MediaError

from .anchor import Anchor
from .call import Call, Calls, Leg
from .record_policy import effective_policy

__all__ = ["Recorder", "Recording", "dtmf_from_info", "join_pcaps"]

log = logging.getLogger(__name__)

# What each in-call code (contract.FEATURE_IN_CALL) does.
CODE_ACTIONS = {
    Feature.RECORD_START: RecordingAction.START,
    Feature.RECORD_STOP: RecordingAction.STOP,
    Feature.RECORD_PAUSE: RecordingAction.PAUSE,
    Feature.RECORD_RESUME: RecordingAction.RESUME,
}
# Seconds between the keys of one in-call code.
KEY_TIMEOUT = 3.0
# What each action asks of rtpengine, the state it leaves, and the states it applies to.
_ACTIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    RecordingAction.START: ("start recording", "recording", ("", "stopped")),
    RecordingAction.RESUME: ("start recording", "recording", ("paused",)),
    RecordingAction.PAUSE: ("stop recording", "paused", ("recording",)),
    RecordingAction.STOP: ("stop recording", "stopped", ("recording", "paused")),
}
# RFC 4733 event numbers of the keys.
_EVENT_KEYS = "0123456789*#ABCD"


@dataclass(slots=True, eq=False)
class Recording:
    """A call that may be recorded: its state (``""`` before the first start, then
    recording, paused, stopped), when its first part started (epoch), the rtpengine sessions
    it was recorded under, the caller's tag there, and each party's keys so far."""

    caller_tag: str
    state: str = ""
    started: float = 0.0
    media_ids: list[str] = field(default_factory=list)
    keys: dict[str, tuple[str, float]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _DtmfProtocol(asyncio.DatagramProtocol):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.recorder.dtmf_report(data, addr[0])


class Recorder:
    """The call layer's recordings: a call observer (answer: the policy; end: the file) and a
    service (rtpengine's DTMF reports)."""

    def __init__(self, ctx: EngineContext, calls: Calls, anchor: Anchor, config: CallConfig):
        self.ctx = ctx
        self.calls = calls
        self.anchor = anchor
        self.config = config
        self._transport: asyncio.DatagramTransport | None = None

    # --- service -------------------------------------------------------------------------
    async def start(self) -> None:
        if self.config.dtmf_listen is None or not self.config.recording_dir:
            return
        loop = asyncio.get_running_loop()
        try:
            self._transport, _ = await loop.create_datagram_endpoint(
                lambda: _DtmfProtocol(self), local_addr=self.config.dtmf_listen
            )
        except OSError as exc:
            log.warning("rtpengine DTMF reports: cannot listen on %s (%s); in-call codes "
                        "from SIP INFO only", self.config.dtmf_listen, exc)  # fmt: skip

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @property
    def enabled(self) -> bool:
        return bool(self.config.recording_dir) and self.anchor.media is not None

    # --- observer ------------------------------------------------------------------------
    def call_changed(self, call: Call) -> None:
        if call.state == "answered" and call.recording is None:
            if not self.enabled or call.b is None or call.a is None:
                return
            policy = effective_policy(call, self.ctx.directory.carriers.trunks)
            if policy == RecordingPolicy.NEVER:
                return
            if not call.anchored:
                # rtpengine failed at set-up (logged): its media never reaches rtpengine.
                log.warning("call %s (recording %s): media not anchored, not recorded",
                            call.id, policy)  # fmt: skip
                call.recording = False
                return
            call.recording = Recording(caller_tag=call.a.local_tag)
            if policy == RecordingPolicy.ALWAYS:
                self.calls.spawn(self.act(call, RecordingAction.START, "policy"))
        elif call.state == "ended" and call.recording:
            self.calls.spawn(self.finish(call, call.recording))

    # --- actions -------------------------------------------------------------------------
    def control(self, cmd: RecordCall) -> None:
        """The API's ``RecordCall``: only a call of the command's own tenant is touched."""
        call = self.calls.by_id.get(cmd.call_id)
        if call is None or call.tenant.schema != cmd.schema:
            log.info("record %s: no call %s of %s here", cmd.action, cmd.call_id, cmd.schema)
            return
        self.calls.spawn(self.act(call, cmd.action, cmd.by))

    async def act(self, call: Call, action: str, by: str) -> bool:
        """Carry out ``action`` (RecordingAction) on ``call``'s recording for ``by``; False
        when it does not apply (a call that may not be recorded, pausing what is not
        recording...) or rtpengine failed (logged)."""
        rec: Recording | None = call.recording or None
        media = self.anchor.media
        if rec is None or media is None or call.state != "answered":
            log.info("call %s: recording %s by %s: the call is not recordable", call.id,
                     action, by)  # fmt: skip
            return False
        async with rec.lock:
            if call.state != "answered":
                return False
            if action == RecordingAction.START and rec.state == "paused":
                action = RecordingAction.RESUME
            command, state, allowed = _ACTIONS[action]
            if rec.state not in allowed:
                return False
            first = not rec.started and command == "start recording"
            if command == "stop recording" and rec.state == "paused":
                pass  # nothing is being written: a stop after a pause only changes the state
            else:
                try:
                    await media.command(command, call_id=call.media_id)
                except MediaError as exc:
                    log.warning("call %s: rtpengine %s failed: %s", call.id, command, exc)
                    return False
            if call.media_id not in rec.media_ids:
                rec.media_ids.append(call.media_id)
            if first:
                rec.started = time.time()
                self._announce(call)
            rec.state = state
        self.calls.emit(call, EventType.CALL_RECORDING, state=state, by=by)
        return True

    def _announce(self, call: Call) -> None:
        """The tenant's announcement to both parties as the recording starts (rtpengine plays
        a file into a party's stream: each party hears it as if the other spoke)."""
        prompt = call.tenant.recording.announcement
        media = self.anchor.media
        if not prompt or media is None:
            return
        for leg in call.legs():
            self.calls.spawn(self._play(call, leg.local_tag, prompt))

    async def _play(self, call: Call, tag: str, prompt: str) -> None:
        media = self.anchor.media
        if media is None:
            return
        try:
            await media.command("play media", call_id=call.media_id, from_tag=tag, file=prompt)
        except MediaError as exc:
            log.warning("call %s: recording announcement %s not played: %s", call.id, prompt,
                        exc)  # fmt: skip

    # --- in-call codes -------------------------------------------------------------------
    def dtmf_report(self, data: bytes, source: str = "") -> None:
        """One of rtpengine's DTMF reports: ``{"callid", "source_tag", "event", ...}``; only
        from rtpengine's host (its ng address), so nobody else can key a call's codes."""
        rtpengine = self.config.rtpengine
        if source and rtpengine is not None and source != rtpengine[0]:
            log.debug("DTMF report from %s, not rtpengine: dropped", source)
            return
        try:
            report = json.loads(data)
            media_id, tag, event = (
                str(report["callid"]),
                str(report["source_tag"]),
                int(report["event"]),
            )
        except (ValueError, KeyError, TypeError):
            log.debug("bad DTMF report %r", data[:200])
            return
        if not 0 <= event < len(_EVENT_KEYS):
            return
        call = self._by_media_id(media_id)
        if call is None:
            return
        for leg in call.legs():
            if leg.local_tag == tag:
                self.key(leg, _EVENT_KEYS[event])
                return

    def _by_media_id(self, media_id: str) -> Call | None:
        call = self.calls.by_id.get(media_id)  # a call's first session has its id
        if call is not None and call.media_id == media_id:
            return call
        for call in self.calls.by_id.values():
            if call.media_id == media_id:
                return call
        return None

    def key(self, leg: Leg, key: str) -> None:
        """A key ``leg``'s party pressed during the call: when the keys so far end in one of
        the tenant's in-call codes, its action (for an extension's party only: an outside
        caller cannot control the recording)."""
        call = leg.call
        rec: Recording | None = call.recording or None
        if rec is None or call.state != "answered":
            return
        by = _extension_of(call, leg)
        if not by:
            return
        now = asyncio.get_running_loop().time()
        keys, last = rec.keys.get(leg.local_tag, ("", 0.0))
        if now - last > KEY_TIMEOUT:
            keys = ""
        keys = (keys + key)[-16:]
        codes = call.tenant.media.codes
        for feature, action in CODE_ACTIONS.items():
            code = codes.get(feature)
            if code and keys.endswith(code):
                rec.keys[leg.local_tag] = ("", now)
                self.calls.spawn(self.act(call, action, by))
                return
        rec.keys[leg.local_tag] = (keys, now)

    # --- the end -------------------------------------------------------------------------
    async def finish(self, call: Call, rec: Recording) -> None:
        """The call ended: read where the caller's media came from, delete the rtpengine
        session (which completes the files), join the parts and announce the recording."""
        media = self.anchor.media
        ids = list(dict.fromkeys([*rec.media_ids, call.media_id]))
        caller = ""
        if media is not None and rec.started:
            with contextlib.suppress(MediaError):
                caller = _endpoint(await media.query(call.media_id), rec.caller_tag)
        if media is not None:
            for media_id in ids:
                with contextlib.suppress(MediaError):
                    await media.delete(media_id)
        if not rec.started:
            return
        directory = Path(self.config.recording_dir)
        try:
            path = await self._collect(directory, ids, call.id)
        except OSError:
            log.exception("call %s: its recording files could not be read", call.id)
            return
        if path is None:
            log.warning("call %s: recorded, but rtpengine wrote no packets", call.id)
            return
        self.calls.emit(
            call,
            EventType.RECORDING_READY,
            path=str(path),
            format="pcap",
            caller=caller,
            started=f"{rec.started:.3f}",
        )

    async def _collect(self, directory: Path, media_ids: list[str], call_id: str) -> Path | None:
        """The call's one pcap: its parts' metadata once rtpengine completed them (a part is
        in ``tmp/`` until then), parts joined when there are several."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while loop.time() < deadline:
            pending = await asyncio.to_thread(_pending_parts, directory, media_ids)
            if not pending:
                break
            await asyncio.sleep(0.1)
        return await asyncio.to_thread(_join_parts, directory, media_ids, call_id)


def _extension_of(call: Call, leg: Leg) -> str:
    """The extension number of ``leg``'s party; "" for an outside party (a trunk's)."""
    if leg is call.a:
        if call.inbound:
            return ""
        number = call.caller.number
    else:
        if call.trunks and not call.inbound:
            return ""  # the callee is outside
        number = leg.user
    return number if number in call.tenant.extensions else ""


def _endpoint(query: dict[str, Any], tag: str) -> str:
    """``address:port`` the party ``tag``'s RTP came from, in an ng ``query`` answer."""
    try:
        streams = query["tags"][tag]["medias"][0]["streams"]
        endpoint = streams[0]["endpoint"]
        return f"{endpoint['address']}:{endpoint['port']}"
    except (KeyError, IndexError, TypeError):
        return ""


def dtmf_from_info(content_type: str, body: bytes) -> str:
    """The key of a SIP INFO DTMF body: ``application/dtmf-relay`` (``Signal=5``) or
    ``application/dtmf`` (``5``); "" for anything else."""
    ct = content_type.split(";", 1)[0].strip().lower()
    text = body.decode("ascii", "replace")
    if ct == "application/dtmf-relay":
        for line in text.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                text = value
                break
        else:
            return ""
    elif ct != "application/dtmf":
        return ""
    key = text.strip().upper()
    if key in ("10", "11"):  # some phones send the event number
        key = "*#"[int(key) - 10]
    return key if len(key) == 1 and key in _EVENT_KEYS else ""


# ---------------------------------------------------------------- the files (in a thread)

_PCAP_HEADER = 24
_RECORD_HEADER = 16


def _pending_parts(directory: Path, media_ids: list[str]) -> bool:
    tmp = directory / "tmp"
    return any(any(tmp.glob(f"rtpengine-meta-{m}-*")) for m in media_ids)


def _join_parts(directory: Path, media_ids: list[str], call_id: str) -> Path | None:
    parts: list[Path] = []
    metas: list[Path] = []
    for media_id in media_ids:
        for meta in sorted((directory / "metadata").glob(f"rtpengine-meta-{media_id}-*.txt")):
            metas.append(meta)
            first = meta.read_text(errors="replace").split("\n", 1)[0].strip()
            pcap = Path(first) if first else None
            if pcap is not None and pcap.is_file():
                parts.append(pcap)
    with_packets = [p for p in parts if p.stat().st_size > _PCAP_HEADER]
    for p in parts:
        if p not in with_packets:
            p.unlink(missing_ok=True)
    if not with_packets:
        out = None
    elif len(with_packets) == 1:
        out = with_packets[0]
    else:
        out = directory / "pcaps" / f"{call_id}.pcap"
        join_pcaps(with_packets, out)
        for p in with_packets:
            p.unlink(missing_ok=True)
    for meta in metas:
        meta.unlink(missing_ok=True)
    return out


def _first_time(path: Path) -> tuple[int, int]:
    with path.open("rb") as f:
        f.seek(_PCAP_HEADER)
        head = f.read(8)
    return struct.unpack("<II", head) if len(head) == 8 else (0, 0)


def join_pcaps(parts: Iterable[Path], out: Path) -> None:
    """Write the packets of pcap ``parts`` (rtpengine's: little-endian, one link type) one
    after the other into ``out``, the parts ordered by their first packet's time."""
    ordered = sorted(parts, key=_first_time)
    tmp = out.with_suffix(".part")
    with tmp.open("wb") as w:
        for i, part in enumerate(ordered):
            with part.open("rb") as f:
                header = f.read(_PCAP_HEADER)
                if i == 0:
                    w.write(header)
                while chunk := f.read(1 << 16):
                    w.write(chunk)
    tmp.replace(out)
