"""A real SIP phone for tests: pjsua2 in a child process, driven over a pipe.

Why a child process, and why this loop: the stock pjsua2 binding allows at most 4 calls and 8
accounts per process, and it deadlocks on the GIL when a Python thread calls into pjsip while a
pjsip worker thread runs a callback. So each :class:`Phone` owns one process whose *only*
thread does everything: ``uaConfig.threadCnt = 0`` (no pjsip worker), media sockets on the same
ioqueue (``hasIoqueue = False``), and the loop alternates between commands from the pipe and
``pjsua_handle_events`` (called through ctypes, which releases the GIL while pjsip polls; the
binding itself has no ``libHandleEvents``). Callbacks therefore run on that one thread.

The binding has no tone generator, WAV player or stream statistics either, so the pjsua C API is
reached through ctypes for those: a looping WAV player (a 1 kHz tone written with ``wave``) and
``pjsua_conf_get_signal_level`` to measure the audio a call receives.

Nor has it MWI (no ``mwiConfig``, no ``onMwiInfo``): ``account(..., mwi=True)`` switches the C
account's ``mwi_enabled`` on through ``pjsua_acc_modify`` (its offset found from the default
config, see ``_mwi_offset``), so pjsua subscribes to ``message-summary`` as a desk phone does,
and a phone made with ``Phone(mwi=True)`` reads the NOTIFYs it receives from pjsip's message
log: each ``message-summary`` NOTIFY becomes an ``mwi`` event (``waiting``, ``voice``, the
message), in or out of a subscription, what the phone's lamp would show.

Also here: :class:`RtpEngineProcess`, an rtpengine started on free ports for a test.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import math
import multiprocessing as mp
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import wave
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

PJSUA_CALL_UNHOLD = 1

# ------------------------------------------------------------------------------ child side


def _tone_wav(path: str, freq: float = 1000.0, seconds: float = 1.0, rate: int = 8000) -> None:
    n = int(seconds * rate)
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(n)
    )
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)


class _PjStr(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_char_p), ("slen", ctypes.c_long)]


def _mwi_offset(lib: ctypes.CDLL) -> int:
    """Where ``pjsua_acc_config.mwi_enabled`` sits: just before ``mwi_expires``, the only
    field whose default is PJSIP_MWI_DEFAULT_EXPIRES (3600) in a default account config."""
    buf = ctypes.create_string_buffer(65536)
    lib.pjsua_acc_config_default(buf)
    found = [i for i in range(4, 8192, 4) if struct.unpack_from("<I", buf.raw, i)[0] == 3600]
    if len(found) != 1 or struct.unpack_from("<I", buf.raw, found[0] - 4)[0] != 0:
        raise RuntimeError(f"cannot find mwi_enabled in pjsua_acc_config ({found})")
    return found[0] - 4


def _mwi_event(text: str) -> dict[str, Any] | None:
    """An ``mwi`` event from a logged incoming message, when it is a message-summary NOTIFY."""
    start = text.find("NOTIFY sip:")
    if start < 0 or "message-summary" not in text:
        return None
    msg = text[start:]
    waiting = re.search(r"(?mi)^Messages-Waiting:\s*(\S+)", msg)
    voice = re.search(r"(?mi)^Voice-Message:\s*([^\r\n]+)", msg)
    to = re.search(r"(?mi)^(?:To|t):([^\r\n]*)", msg)
    return {
        "waiting": waiting.group(1) if waiting else "",
        "voice": voice.group(1).strip() if voice else "",
        "in_dialog": bool(to and ";tag=" in to.group(1)),
        "msg": msg,
    }


def _child(  # noqa: C901
    conn: Connection, sip_port: int, auto_ring: bool = False, mwi: bool = False
) -> None:
    import pjsua2 as pj

    libdir = Path(pj.__file__).parent / "pjsua2_pybind11.libs"
    # The same file the extension linked against, so dlopen hands back the loaded instance.
    lib = ctypes.CDLL(str(next(libdir.glob("libpjsua-*.so*"))))
    lib.pjsua_handle_events.argtypes = [ctypes.c_uint]
    lib.pjsua_conf_get_signal_level.argtypes = [
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_uint),
        ctypes.POINTER(ctypes.c_uint),
    ]
    lib.pjsua_player_create.argtypes = [
        ctypes.POINTER(_PjStr),
        ctypes.c_uint,
        ctypes.POINTER(ctypes.c_int),
    ]
    lib.pjsua_player_get_conf_port.argtypes = [ctypes.c_int]
    lib.pjsua_recorder_create.argtypes = [
        ctypes.POINTER(_PjStr),
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_ssize_t,
        ctypes.c_uint,
        ctypes.POINTER(ctypes.c_int),
    ]
    lib.pjsua_recorder_get_conf_port.argtypes = [ctypes.c_int]
    lib.pjsua_recorder_destroy.argtypes = [ctypes.c_int]
    lib.pjsua_conf_connect.argtypes = [ctypes.c_int, ctypes.c_int]

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.maxCalls = 4
    cfg.medConfig.sndAutoCloseTime = -1
    cfg.medConfig.noVad = True  # keep RTP flowing in silence too
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    if mwi:

        class MwiLog(pj.LogWriter):
            def write(self, entry: Any) -> None:
                # Received messages only: "<time> <file> .RX <n> bytes Request msg NOTIFY...".
                if ".RX " in entry.msg.split("\n", 1)[0]:
                    ev = _mwi_event(entry.msg)
                    if ev is not None:
                        conn.send(("event", "mwi", ev))

        writer = MwiLog()
        cfg.logConfig.writer = writer
        # pjsip logs each message at level 4; pjsua hands the writer only what passes the
        # console level (the writer replaces the console: nothing more is printed).
        cfg.logConfig.level = 4
        cfg.logConfig.consoleLevel = 4
        cfg.logConfig.msgLogging = True
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = "127.0.0.1"
    tcfg.port = sip_port
    ep.transportCreate(pj.TransportType.UDP, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev() if callable(ep.audDevManager) else ep.audDevManager.setNullDev()

    handles = itertools.count(1)
    accounts: dict[int, Any] = {}
    calls: dict[int, Any] = {}
    sdp: dict[int, str] = {}
    player_slot: list[int] = []
    playing: set[int] = set()  # calls the tone is wired to, re-wired when their media changes
    tmp = tempfile.mkdtemp(prefix="pjphone-")

    def emit(kind: str, **data: Any) -> None:
        conn.send(("event", kind, data))

    def handle_of(call: Any) -> int:
        return next((h for h, c in calls.items() if c is call), 0)

    class PCall(pj.Call):
        def onCallState(self, prm: Any) -> None:
            ci = self.info
            emit(
                "state",
                call=handle_of(self),
                state=ci.state.name,
                code=int(ci.lastStatusCode),
                reason=ci.lastReason,
            )

        def onCallMediaState(self, prm: Any) -> None:
            ci = self.info
            h = handle_of(self)
            for m in ci.media:
                if m.status.name == "ACTIVE" and m.audioConfSlot >= 0:
                    # pjsua2 leaves wiring to the app: without a listener the bridge never
                    # reads the call's port and its received level stays at zero.
                    lib.pjsua_conf_connect(int(m.audioConfSlot), 0)
                    if h in playing and player_slot:
                        # A re-INVITE (hold/unhold) can give the call a new conference port:
                        # the tone follows it, as a phone's microphone would.
                        lib.pjsua_conf_connect(player_slot[0], int(m.audioConfSlot))
            emit("media", call=h, status=[m.status.name for m in ci.media])

        def onCallSdpCreated(self, prm: Any) -> None:
            if prm.remSdp.wholeSdp:
                sdp[handle_of(self)] = prm.remSdp.wholeSdp

        def onDtmfDigit(self, prm: Any) -> None:
            emit("dtmf", call=handle_of(self), digit=prm.digit, method=prm.method.name)

        def onCallTsxState(self, prm: Any) -> None:
            # In-dialog requests we receive (NOTIFY for a REFER, INFO, re-INVITE): report the
            # method and body so tests can read sipfrag progress.
            try:
                e = prm.e
                if e.type != pj.EventId.TSX_STATE:
                    return
                tsx = e.body.tsxState.tsx
                msg = e.body.tsxState.src.rdata.wholeMsg
                if not msg:
                    return
                kind = "response" if msg.startswith("SIP/2.0") else "request"
                _, _, body = msg.partition("\r\n\r\n")
                if body.startswith("v=0"):
                    sdp[handle_of(self)] = body
                emit(kind, call=handle_of(self), method=tsx.method, msg=msg)
            except Exception as exc:  # a missing attribute in the binding must not kill us
                emit("error", where="onCallTsxState", error=repr(exc))

    class PAccount(pj.Account):
        def __init__(self, handle: int) -> None:
            super().__init__()
            self.handle = handle

        def onRegState(self, prm: Any) -> None:
            emit("reg", acc=self.handle, code=int(prm.code), expiration=prm.expiration)

        def onIncomingCall(self, prm: Any) -> None:
            call = PCall(self, prm.callId)
            h = next(handles)
            calls[h] = call
            msg = prm.rdata.wholeMsg
            _, _, body = msg.partition("\r\n\r\n")
            if body.startswith("v=0"):
                sdp[h] = body
            if auto_ring:
                # 180 from inside the callback, as a real phone rings: no round trip through
                # the test (which races the PBX's timers on a loaded machine).
                call.answer(op(180))
            emit("incoming", acc=self.handle, call=h, msg=msg)

    def call_slot(h: int) -> int:
        ci = calls[h].info
        for m in ci.media:
            if m.type.name == "AUDIO" or "AUDIO" in str(m.type):
                return int(m.audioConfSlot)
        return -1

    def op(code: int = 0, flag: int = 0) -> Any:
        p = pj.CallOpParam(True)
        if code:
            p.statusCode = pj.StatusCode(code)
        if flag:
            p.opt.flag = flag
        return p

    def cmd_account(
        user: str, domain: str, proxy: str, password: str, register: bool = True, mwi: bool = False
    ) -> int:
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{user}@{domain}"
        acfg.regConfig.registrarUri = f"sip:{domain}" if register else ""
        acfg.regConfig.registerOnAdd = register
        acfg.regConfig.timeoutSec = 300
        acfg.sipConfig.proxies.append(proxy)
        cred = pj.AuthCredInfo("digest", "*", user, 0, password)
        acfg.sipConfig.authCreds.append(cred)
        h = next(handles)
        acc = PAccount(h)
        acc.create(acfg)
        accounts[h] = acc
        if mwi:
            enable_mwi(int(acc.id))
        return h

    def enable_mwi(acc_id: int) -> None:
        lib.pjsua_pool_create.restype = ctypes.c_void_p
        lib.pjsua_pool_create.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t]
        lib.pjsua_acc_get_config.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        lib.pjsua_acc_modify.argtypes = [ctypes.c_int, ctypes.c_void_p]
        pool = lib.pjsua_pool_create(b"mwi", 4000, 4000)
        buf = ctypes.create_string_buffer(65536)
        status = lib.pjsua_acc_get_config(acc_id, pool, buf)
        if status != 0:
            raise RuntimeError(f"pjsua_acc_get_config failed: {status}")
        ctypes.c_int.from_buffer(buf, _mwi_offset(lib)).value = 1
        status = lib.pjsua_acc_modify(acc_id, buf)
        if status != 0:
            raise RuntimeError(f"pjsua_acc_modify failed: {status}")

    def cmd_unregister(acc: int) -> None:
        accounts[acc].setRegistration(False)

    def cmd_call(acc: int, uri: str) -> int:
        call = PCall(accounts[acc])
        h = next(handles)
        calls[h] = call
        call.makeCall(uri, op())
        return h

    def cmd_answer(call: int, code: int = 200) -> None:
        calls[call].answer(op(code))

    def cmd_hangup(call: int, code: int = 0) -> None:
        calls[call].hangup(op(code))

    def cmd_dtmf(call: int, digits: str) -> None:
        calls[call].dialDtmf(digits)

    def cmd_dtmf_info(call: int, digits: str) -> None:
        prm = pj.CallSendDtmfParam()
        prm.method = pj.DtmfMethod.SIP_INFO  # one INFO (application/dtmf-relay) a key
        prm.digits = digits
        calls[call].sendDtmf(prm)

    def cmd_only_codec(codec: str) -> None:
        # Every codec off but ``codec`` (e.g. "PCMU/8000"): calls made or answered after it
        # offer only that one, so a test can decode what went over the wire.
        # (pjsua_codec_set_priority: every codec whose id starts with the prefix; "" is all.)
        for prefix, priority in ((b"", 0), (codec.encode(), 255)):
            lib.pjsua_codec_set_priority(ctypes.byref(_PjStr(prefix, len(prefix))), priority)

    def cmd_hold(call: int) -> None:
        calls[call].setHold(op())

    def cmd_unhold(call: int) -> None:
        calls[call].reinvite(op(flag=PJSUA_CALL_UNHOLD))

    def cmd_xfer(call: int, uri: str) -> None:
        calls[call].xfer(uri, op())

    def cmd_xfer_replaces(call: int, other: int) -> None:
        calls[call].xferReplaces(calls[other], op())

    last_info: dict[int, dict[str, Any]] = {}

    def cmd_info(call: int) -> dict[str, Any]:
        try:
            ci = calls[call].info
        except Exception:
            # pjsua forgets a call once it is disconnected; answer with what we saw last.
            return {**last_info.get(call, {}), "state": "DISCONNECTED"}
        last_info[call] = {
            "state": ci.state.name,
            "code": int(ci.lastStatusCode),
            "remote_uri": ci.remoteUri,
            "local_uri": ci.localUri,
            "call_id": ci.callIdString,
            "media": [m.status.name for m in ci.media],
            "remote_sdp": sdp.get(call, ""),
        }
        return last_info[call]

    def cmd_play(call: int) -> None:
        if not player_slot:
            path = os.path.join(tmp, "tone.wav")
            _tone_wav(path)
            raw = path.encode()
            pid = ctypes.c_int(-1)
            status = lib.pjsua_player_create(ctypes.byref(_PjStr(raw, len(raw))), 0, pid)
            if status != 0:
                raise RuntimeError(f"pjsua_player_create failed: {status}")
            player_slot.append(int(lib.pjsua_player_get_conf_port(pid.value)))
        playing.add(call)
        lib.pjsua_conf_connect(player_slot[0], call_slot(call))

    recorders: dict[str, int] = {}

    def cmd_record_start(call: int) -> str:
        """Record what the call receives to a WAV file (the bridge's rate); returns its path."""
        path = os.path.join(tmp, f"heard-{call}-{len(recorders)}.wav")
        raw = path.encode()
        rid = ctypes.c_int(-1)
        status = lib.pjsua_recorder_create(
            ctypes.byref(_PjStr(raw, len(raw))), 0, None, -1, 0, ctypes.byref(rid)
        )
        if status != 0:
            raise RuntimeError(f"pjsua_recorder_create failed: {status}")
        recorders[path] = rid.value
        lib.pjsua_conf_connect(call_slot(call), int(lib.pjsua_recorder_get_conf_port(rid.value)))
        return path

    def cmd_record_stop(path: str) -> bytes:
        """Stop the recording and hand back the WAV file's bytes."""
        lib.pjsua_recorder_destroy(recorders.pop(path))
        with open(path, "rb") as f:
            return f.read()

    def cmd_level(call: int) -> tuple[int, int]:
        """(tx, rx) signal level 0..255 of the call's conference port."""
        tx, rx = ctypes.c_uint(0), ctypes.c_uint(0)
        lib.pjsua_conf_get_signal_level(call_slot(call), ctypes.byref(tx), ctypes.byref(rx))
        return int(tx.value), int(rx.value)

    commands: dict[str, Callable[..., Any]] = {
        name.removeprefix("cmd_"): fn for name, fn in locals().items() if name.startswith("cmd_")
    }
    conn.send(("ready", 0, None))
    running = True
    while running:
        while conn.poll(0):
            msg = conn.recv()
            if msg is None:
                running = False
                break
            seq, name, kwargs = msg
            try:
                conn.send(("result", seq, commands[name](**kwargs)))
            except Exception as exc:
                conn.send(("error", seq, repr(exc)))
        lib.pjsua_handle_events(5)
    with contextlib.suppress(Exception):
        ep.hangupAllCalls()
        for _ in range(20):
            lib.pjsua_handle_events(5)
    shutil.rmtree(tmp, ignore_errors=True)
    conn.send(("bye", 0, None))
    # libDestroy would wait for pending transactions; the process is ending anyway.
    os._exit(0)


# ----------------------------------------------------------------------------- parent side


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PhoneError(AssertionError):
    pass


class Phone:
    """One pjsua2 user agent (up to 8 accounts, 4 calls) in its own process.

    Commands are synchronous; events (``reg``, ``incoming``, ``state``, ``media``, ``dtmf``,
    ``request``) are collected and waited for with :meth:`wait`.
    """

    def __init__(
        self,
        name: str = "phone",
        timeout: float = 30.0,
        *,
        auto_ring: bool = False,
        mwi: bool = False,
    ) -> None:
        """``auto_ring``: answer every incoming call 180 at once, inside the phone.
        ``mwi``: report message-summary NOTIFYs as ``mwi`` events (see the module doc)."""
        self.name = name
        self.timeout = timeout
        self.sip_port = free_port()
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_child, args=(child, self.sip_port, auto_ring, mwi), daemon=True
        )
        self.proc.start()
        child.close()
        self._seq = itertools.count(1)
        self.events: list[tuple[str, dict[str, Any]]] = []
        kind, _, _ = self._read(self.timeout)
        if kind != "ready":
            raise PhoneError(f"{name}: child did not start")

    # --- plumbing ------------------------------------------------------------------------
    def _read(self, timeout: float, waiting_for: str = "") -> tuple[str, int, Any]:
        if not self._conn.poll(timeout):
            if waiting_for:
                # The phone is alive; what the test expected just did not happen.
                raise PhoneError(f"{self.name}: {waiting_for}; have {self.events}")
            raise PhoneError(f"{self.name}: no answer from the pjsua2 process in {timeout}s")
        msg = self._conn.recv()
        if msg[0] == "event":
            self.events.append((msg[1], msg[2]))
            return ("event", 0, None)
        return msg

    def _cmd(self, name: str, **kwargs: Any) -> Any:
        seq = next(self._seq)
        self._conn.send((seq, name, kwargs))
        deadline = time.monotonic() + self.timeout
        while True:
            kind, rseq, value = self._read(max(0.0, deadline - time.monotonic()))
            if kind == "result" and rseq == seq:
                return value
            if kind == "error" and rseq == seq:
                raise PhoneError(f"{self.name}.{name}: {value}")

    def wait(
        self,
        kind: str,
        timeout: float | None = None,
        **match: Any,
    ) -> dict[str, Any]:
        """Return (and consume) the first event of ``kind`` whose fields equal ``match``."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            for i, (k, data) in enumerate(self.events):
                if k == kind and all(data.get(f) == v for f, v in match.items()):
                    del self.events[i]
                    return data
            left = deadline - time.monotonic()
            if left <= 0:
                raise PhoneError(f"{self.name}: no {kind} event {match}; have {self.events}")
            self._read(left, f"no {kind} event {match} within the timeout")

    def drain(self) -> None:
        """Pull every event already sent by the child into :attr:`events`."""
        while self._conn.poll(0):
            self._read(0)

    def wait_state(self, call: int, state: str, timeout: float | None = None) -> dict[str, Any]:
        return self.wait("state", timeout, call=call, state=state)

    # --- commands ------------------------------------------------------------------------
    def account(
        self,
        user: str,
        domain: str,
        proxy: str,
        password: str,
        *,
        register: bool = True,
        mwi: bool = False,
    ) -> int:
        """Add an account (registered unless ``register=False``); ``mwi``: it subscribes to
        its mailbox's ``message-summary`` too."""
        acc = self._cmd(
            "account",
            user=user,
            domain=domain,
            proxy=proxy,
            password=password,
            register=register,
            mwi=mwi,
        )
        if register:
            ev = self.wait("reg", acc=acc)
            if ev["code"] != 200:
                raise PhoneError(f"{self.name}: REGISTER {user}@{domain} got {ev['code']}")
        return int(acc)

    def mwi(self, timeout: float | None = None, **match: Any) -> dict[str, Any]:
        """The next message-summary NOTIFY the phone received (``Phone(mwi=True)``), e.g.
        ``mwi(waiting="yes")``: ``waiting``, ``voice`` ("new/old (0/0)"), ``in_dialog``."""
        return self.wait("mwi", timeout, **match)

    def unregister(self, acc: int) -> None:
        self._cmd("unregister", acc=acc)
        self.wait("reg", acc=acc)

    def call(self, acc: int, uri: str) -> int:
        return int(self._cmd("call", acc=acc, uri=uri))

    def incoming(self, timeout: float | None = None) -> dict[str, Any]:
        return self.wait("incoming", timeout)

    def answer(self, call: int, code: int = 200) -> None:
        self._cmd("answer", call=call, code=code)

    def hangup(self, call: int, code: int = 0) -> None:
        self._cmd("hangup", call=call, code=code)

    def dtmf(self, call: int, digits: str) -> None:
        """Key ``digits`` as RFC 2833 telephone-events."""
        self._cmd("dtmf", call=call, digits=digits)

    def dtmf_info(self, call: int, digits: str) -> None:
        """Key ``digits`` as SIP INFO requests (``application/dtmf-relay``)."""
        self._cmd("dtmf_info", call=call, digits=digits)

    def only_codec(self, name: str) -> None:
        """Offer and accept only codec ``name`` ("PCMU/8000") from now on."""
        self._cmd("only_codec", codec=name)

    def hold(self, call: int) -> None:
        self._cmd("hold", call=call)

    def unhold(self, call: int) -> None:
        self._cmd("unhold", call=call)

    def xfer(self, call: int, uri: str) -> None:
        self._cmd("xfer", call=call, uri=uri)

    def xfer_replaces(self, call: int, other: int) -> None:
        self._cmd("xfer_replaces", call=call, other=other)

    def info(self, call: int) -> dict[str, Any]:
        return dict(self._cmd("info", call=call))

    def play(self, call: int) -> None:
        self._cmd("play", call=call)

    def level(self, call: int) -> tuple[int, int]:
        tx, rx = self._cmd("level", call=call)
        return int(tx), int(rx)

    def record(self, call: int, seconds: float) -> tuple[Any, int]:
        """What the call receives during the next ``seconds`` (recorded by the phone, the
        events meanwhile collected): (samples as a numpy int16 array, sample rate)."""
        import io

        import numpy as np

        path = self._cmd("record_start", call=call)
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self._conn.poll(left):  # the recording's length, not an assertion's wait
                self._read(0)
        data = self._cmd("record_stop", path=path)
        with wave.open(io.BytesIO(data)) as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return pcm, rate

    def wait_audio(self, call: int, timeout: float | None = None) -> int:
        """Wait until the call's received signal level rises above silence; return it.
        Polls the phone (each poll is a round trip to its event loop), not a sleep."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while time.monotonic() < deadline:
            _, rx = self.level(call)
            if rx > 10:
                return rx
            self.drain()
            self._conn.poll(0.02)  # wake early on any event instead of sleeping blindly
        raise PhoneError(f"{self.name}: no audio received on call {call}")

    def close(self) -> None:
        if self.proc.is_alive():
            with contextlib.suppress(Exception):
                self._conn.send(None)
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline and self._conn.poll(
                    max(0.0, deadline - time.monotonic())
                ):
                    if self._conn.recv()[0] == "bye":
                        break
            self.proc.join(2)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(2)
        self._conn.close()

    def __enter__(self) -> Phone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def phones(*names: str) -> Iterator[list[Phone]]:
    started: list[Phone] = []
    try:
        for n in names:
            started.append(Phone(n))
        yield started
    finally:
        for p in started:
            p.close()


# --------------------------------------------------------------------------------- rtpengine


class RtpEngineProcess:
    """rtpengine in userspace as ``make run`` starts it (``pbx.processes``: the same options,
    so the tests meet the defaults a user gets), on this worker's own ports."""

    def __init__(self, *, recording_dir: str = "", dtmf_port: int = 0) -> None:
        """``recording_dir``: where it records in pcap files (its pcaps/, metadata/ and tmp/;
        default: a directory of its own); ``dtmf_port``: where it sends a DTMF report per key
        (JSON, on 127.0.0.1; default: a free port nobody reads)."""
        from pbx.processes import processes

        self.ng_port = free_port()
        ports = self.ports()
        self._own_dir = "" if recording_dir else tempfile.mkdtemp(prefix="rtpengine-")
        env = {
            "PBX_RTP_INTERFACE": "127.0.0.1",
            "PBX_RTPENGINE_NG": f"127.0.0.1:{self.ng_port}",
            "PBX_RTP_PORT_MIN": str(ports.start),
            "PBX_RTP_PORT_MAX": str(ports.stop - 1),
            "PBX_RECORDING_DIR": recording_dir or self._own_dir,
            "PBX_RTPENGINE_DTMF": f"127.0.0.1:{dtmf_port or free_port()}",
        }
        argv = {p.name: p.argv for p in processes(env)}["rtpengine"]
        self.proc = subprocess.Popen(
            # Only warnings: nobody reads its stderr until it fails (a full pipe would stall it).
            [*argv, "--log-level=4"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_ready()

    @staticmethod
    def ports() -> range:
        """The media ports of this test worker's rtpengine."""
        base = 30000 + (os.getpid() % 300) * 100
        return range(base, base + 100)

    def _wait_ready(self, timeout: float = 10.0) -> None:
        """Ping over ng until it answers: readiness by protocol, not by a fixed delay."""
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.1)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"rtpengine exited: {err[-2000:]}")
                s.sendto(b"ready d7:command4:pinge", ("127.0.0.1", self.ng_port))
                try:
                    data = s.recv(2048)
                except (TimeoutError, ConnectionRefusedError):
                    continue
                if b"pong" in data:
                    return
        raise RuntimeError("rtpengine did not answer ping")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stderr:
            self.proc.stderr.close()
        if self._own_dir:
            shutil.rmtree(self._own_dir, ignore_errors=True)
