"""The engine's side of the media server's control protocol (see ``telephony.media.protocol``).

One :class:`MediaClient` per engine keeps a TCP connection to the media server, reconnecting in
the background (every second) whenever it is not up. :meth:`MediaClient.open` gives a
:class:`MediaSession`: an RTP endpoint at the server for one call leg, with coroutines that
play, record and collect digits. Nothing here waits forever: replies time out with
:class:`MediaError`, and when the session or the connection ends every waiter is released at
once (a play returns ``"closed"``, a recording ``(0.0, "closed")``, a digit wait ``None``).

A leg of an IVR call, from the engine's side::

    media = MediaClient("127.0.0.1", 2230)
    await media.start()                                   # once, at engine start
    session, answer_sdp = await media.open(call_id + "-a", offer=invite.body, tenant=schema)
    # ... send 200 OK with answer_sdp ...
    try:
        reason = await session.play([{"file": welcome}], barge=True)   # "done" or "dtmf"
        choice = await session.collect(1, timeout=5.0)   # a barge digit is in the queue too
        seconds, why = await session.record(path, max_seconds=120, silence_seconds=5)
    finally:
        await session.close()                             # on BYE; never raises

Digits are queued as they arrive, whatever else is going on: the digit that barged into a
prompt, or the stop digit of a recording, is still there for :meth:`MediaSession.next_digit`
(:meth:`MediaSession.flush_digits` drops them).

No Django and nothing else from the project but the protocol module: the engine imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from telephony.media.protocol import MAX_LINE, ProtocolError, decode, encode

log = logging.getLogger(__name__)

__all__ = ["MediaClient", "MediaError", "MediaSession"]

RECONNECT = 1.0


class MediaError(Exception):
    """The media server is not connected, refused a request, or did not answer in time."""


class MediaSession:
    """A call leg's endpoint at the media server."""

    def __init__(self, client: MediaClient, session_id: str) -> None:
        self.id = session_id
        self.closed = False
        self._client = client
        self._digits: asyncio.Queue[str | None] = asyncio.Queue()
        self._plays: dict[int, asyncio.Future[str]] = {}
        self._records: dict[int, asyncio.Future[tuple[float, str]]] = {}

    def __repr__(self) -> str:
        return f"<MediaSession {self.id}{' closed' if self.closed else ''}>"

    # ------------------------------------------------------------------ SDP
    async def answer(self, sdp: bytes) -> None:
        """Give the remote's answer to the offer :meth:`MediaClient.open` made."""
        self._check_open()
        await self._client._request("answer", session=self.id, sdp=_text(sdp))

    async def update(self, sdp: bytes) -> bytes:
        """A re-offer from the remote (moved, hold, unhold): our answer."""
        self._check_open()
        result = await self._client._request("update", session=self.id, sdp=_text(sdp))
        return str(result["sdp"]).encode()

    # ------------------------------------------------------------------ play
    async def play(self, items: list[dict], *, loop: bool = False, barge: bool = False) -> str:
        """Play ``items`` and wait for the end: done, dtmf (barge-in), stopped, closed, error."""
        waiter = await self._start_play(items, loop, barge)
        if waiter is None:
            return "closed"
        return await waiter

    async def start_play(
        self, items: list[dict], *, loop: bool = False, barge: bool = False
    ) -> None:
        """Start playing and return once the server has accepted it."""
        await self._start_play(items, loop, barge)

    async def _start_play(
        self, items: list[dict], loop: bool, barge: bool
    ) -> asyncio.Future[str] | None:
        if self.closed:
            return None
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        try:
            req_id, reply = self._client._send(
                "play", session=self.id, items=items, loop=loop, barge=barge
            )
        except MediaError:
            if self.closed or not self._client.connected:
                return None
            raise
        self._plays[req_id] = waiter
        try:
            await self._client._reply(req_id, reply, "play")
        except MediaError:
            self._plays.pop(req_id, None)
            if self.closed:
                return None
            raise
        return waiter

    async def stop(self) -> None:
        """Stop playing and recording (their waiters get "stopped"). Never raises."""
        if self.closed:
            return
        try:
            await self._client._request("stop", session=self.id)
        except MediaError as exc:
            log.debug("media session %s: stop: %s", self.id, exc)

    # ------------------------------------------------------------------ follow
    async def follow(self, *sources: MediaSession) -> None:
        """Send what ``sources`` receive (mixed when several; none: stop following). The
        sources are sessions of this client (and tenant); a source that closes drops out."""
        self._check_open()
        await self._client._request(
            "follow", session=self.id, sources=[source.id for source in sources]
        )

    # ------------------------------------------------------------------ record
    async def record(
        self,
        path: str,
        *,
        max_seconds: float,
        silence_seconds: float = 0,
        stop_digits: str = "#",
        beep: bool = True,
    ) -> tuple[float, str]:
        """Record to ``path`` (WAV 8 kHz mono 16-bit) until a stop digit, ``max_seconds``,
        ``silence_seconds`` of silence, stop or close: ``(seconds, reason)``, the file written
        (reason "error", 0 seconds: it could not be written)."""
        if self.closed:
            return 0.0, "closed"
        waiter: asyncio.Future[tuple[float, str]] = asyncio.get_running_loop().create_future()
        try:
            req_id, reply = self._client._send(
                "record",
                session=self.id,
                path=path,
                max_seconds=max_seconds,
                silence_seconds=silence_seconds,
                stop_digits=stop_digits,
                beep=beep,
            )
        except MediaError:
            if self.closed or not self._client.connected:
                return 0.0, "closed"
            raise
        self._records[req_id] = waiter
        try:
            await self._client._reply(req_id, reply, "record")
        except MediaError:
            self._records.pop(req_id, None)
            if self.closed:
                return 0.0, "closed"
            raise
        return await waiter

    # ------------------------------------------------------------------ digits
    async def next_digit(self, timeout: float) -> str | None:  # noqa: ASYNC109 - the API's
        """The next digit received (RFC 4733, or in-band), or None on timeout or close."""
        if self._digits.empty():
            if self.closed:
                return None
            try:
                digit = await asyncio.wait_for(self._digits.get(), max(0.0, timeout))
            except TimeoutError:
                return None
        else:
            digit = self._digits.get_nowait()
        if digit is None:
            self._digits.put_nowait(None)  # wake the next waiter too
        return digit

    async def collect(
        self,
        max_digits: int,
        *,
        timeout: float,  # noqa: ASYNC109 - inter-digit, not the call's deadline
        first_timeout: float | None = None,
        terminators: str = "#",
    ) -> str:
        """Up to ``max_digits`` digits; a terminator (not returned) or ``timeout`` between digits
        ends early; the first digit may wait ``first_timeout`` instead."""
        digits = ""
        wait = timeout if first_timeout is None else first_timeout
        while len(digits) < max_digits:
            digit = await self.next_digit(wait)
            if digit is None or digit in terminators:
                break
            digits += digit
            wait = timeout
        return digits

    def flush_digits(self) -> None:
        """Forget digits received so far (type-ahead that should not count)."""
        while not self._digits.empty():
            if self._digits.get_nowait() is None:
                self._digits.put_nowait(None)
                break

    # ------------------------------------------------------------------ end
    async def close(self) -> None:
        """End the session at the server (a recording is finished first). Idempotent."""
        if self.closed:
            return
        try:
            await self._client._request("close", session=self.id)
        except MediaError as exc:
            log.debug("media session %s: close: %s", self.id, exc)
        except Exception:  # never raises: callers close in finally blocks
            log.exception("media session %s: close failed", self.id)
        self._mark_closed()

    def _check_open(self) -> None:
        if self.closed:
            raise MediaError("media session closed")

    def _mark_closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._client._sessions.pop(self.id, None)
        for play in self._plays.values():
            if not play.done():
                play.set_result("closed")
        self._plays.clear()
        for rec in self._records.values():
            if not rec.done():
                rec.set_result((0.0, "closed"))
        self._records.clear()
        self._digits.put_nowait(None)

    def _event(self, message: dict[str, Any]) -> None:
        name = message.get("event")
        if name == "dtmf":
            digit = message.get("digit")
            if isinstance(digit, str):
                self._digits.put_nowait(digit)
        elif name == "played":
            play = self._plays.pop(message.get("play"), None)  # type: ignore[arg-type]
            if play is not None and not play.done():
                play.set_result(str(message.get("reason")))
        elif name == "recorded":
            rec = self._records.pop(message.get("record"), None)  # type: ignore[arg-type]
            if rec is not None and not rec.done():
                rec.set_result((float(message.get("seconds") or 0.0), str(message.get("reason"))))
        elif name == "closed":
            log.info("media session %s closed by the server: %s", self.id, message.get("reason"))
            self._mark_closed()


def _text(sdp: bytes | str) -> str:
    return sdp.decode("utf-8", "replace") if isinstance(sdp, bytes) else sdp


class MediaClient:
    """The engine's connection to the media server."""

    def __init__(self, host: str, port: int, *, timeout: float = 2.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._sessions: dict[str, MediaSession] = {}
        self._stopping = False
        self._first_try: asyncio.Event | None = None

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def start(self) -> None:
        """Connect (waiting for the first attempt at most ``timeout``); when the server is not
        up, keep trying every second in the background. Never raises."""
        if self._task is not None:
            return
        self._stopping = False
        self._first_try = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="media-client")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_try.wait(), self.timeout)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self._lost()

    async def open(
        self,
        session_id: str,
        *,
        offer: bytes | None = None,
        tenant: str = "",
        inband: bool = False,
        direction: str = "sendrecv",
    ) -> tuple[MediaSession, bytes]:
        """A new endpoint: with ``offer``, our answer; without, our offer (give the remote's
        answer to :meth:`MediaSession.answer`). ``inband``: also hear DTMF in the audio (for
        remotes that send no RFC 4733 events). ``direction``: the most the session does
        (``sendonly``: a listener that only hears what it follows)."""
        if session_id in self._sessions:
            raise MediaError("session exists")
        session = MediaSession(self, session_id)
        fields: dict[str, Any] = {"session": session_id, "tenant": tenant, "inband": inband}
        if direction != "sendrecv":
            fields["direction"] = direction
        fields["offer"] = None if offer is None else _text(offer)
        self._sessions[session_id] = session  # before the request: its events may follow fast
        try:
            result = await self._request("open", **fields)
        except BaseException:
            if self._sessions.get(session_id) is session:
                del self._sessions[session_id]
            session.closed = True
            raise
        return session, str(result["sdp"]).encode()

    async def stats(self, *, reset: bool = False) -> dict[str, Any]:
        """The server's counters (sessions, packets, tick lag, ...); ``reset`` starts the tick
        lag figures afresh after this answer."""
        result = await self._request("stats", reset=reset)
        return {k: v for k, v in result.items() if k not in ("id", "ok")}

    # ------------------------------------------------------------------ plumbing
    def _send(self, op: str, **fields: Any) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise MediaError("media server not connected")
        self._next_id += 1
        req_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        try:
            writer.write(encode({"id": req_id, "op": op, **fields}))
        except (OSError, RuntimeError) as exc:
            self._pending.pop(req_id, None)
            raise MediaError(f"media server: {exc}") from exc
        return req_id, future

    async def _reply(
        self, req_id: int, future: asyncio.Future[dict[str, Any]], op: str
    ) -> dict[str, Any]:
        try:
            message = await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            raise MediaError(f"media server: no reply to {op} in {self.timeout:g} s") from None
        finally:
            self._pending.pop(req_id, None)
        if not message.get("ok"):
            raise MediaError(str(message.get("error") or "refused"))
        return message

    async def _request(self, op: str, **fields: Any) -> dict[str, Any]:
        req_id, future = self._send(op, **fields)
        return await self._reply(req_id, future, op)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, limit=MAX_LINE), self.timeout
                )
            except (OSError, TimeoutError) as exc:
                log.debug("media server %s:%d not reachable: %s", self.host, self.port, exc)
                if self._first_try is not None:
                    self._first_try.set()
                await asyncio.sleep(RECONNECT)
                continue
            self._writer = writer
            log.info("connected to the media server at %s:%d", self.host, self.port)
            if self._first_try is not None:
                self._first_try.set()
            try:
                await self._read(reader)
            finally:
                self._lost()
                writer.close()
            if not self._stopping:
                log.warning("media server connection lost; reconnecting")
                await asyncio.sleep(RECONNECT)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await reader.readline()
            except (ConnectionError, ValueError):
                return
            if not line:
                return
            try:
                message = decode(line)
            except ProtocolError:
                log.warning("media server sent a bad line: %.200r", line)
                continue
            try:
                self._dispatch(message)
            except Exception:
                log.exception("media client: cannot handle %.200r", line)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "event" in message:
            session = self._sessions.get(str(message.get("session")))
            if session is not None:
                session._event(message)
            return
        req_id = message.get("id")
        future = self._pending.pop(req_id, None) if isinstance(req_id, int) else None
        if future is not None and not future.done():
            future.set_result(message)
        elif req_id is None and not message.get("ok", True):
            log.warning("media server: %s", message.get("error"))

    def _lost(self) -> None:
        """The connection is gone: its requests fail, its sessions are closed."""
        self._writer = None
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(MediaError("media server connection lost"))
                future.exception()  # retrieved: nobody may be waiting any more
        for session in list(self._sessions.values()):
            session._mark_closed()
        self._sessions.clear()
