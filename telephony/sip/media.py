"""rtpengine ng control protocol client (UDP, bencode), for anchoring call media.

The ng protocol is one datagram per command: ``<cookie> <bencoded dict>``; the answer repeats the
cookie. Commands are retransmitted (rtpengine caches answers per cookie, so a retransmitted
``offer`` is not applied twice) and time out with :class:`MediaError`. Nothing here blocks the
loop: one ``DatagramProtocol`` and a Future per outstanding cookie.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from typing import Any

__all__ = ["MediaError", "RtpEngine", "bdecode", "bencode", "connection_address"]

log = logging.getLogger(__name__)

BValue = int | bytes | str | list[Any] | dict[str, Any]


class MediaError(Exception):
    """rtpengine did not answer, or answered ``result: error``."""


# ------------------------------------------------------------------------------------ bencode


def bencode(value: Any) -> bytes:
    """Encode ints, str/bytes, lists and dicts (keys sorted, as the format requires)."""
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: Any, out: list[bytes]) -> None:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, str | bytes):
        raw = value.encode() if isinstance(value, str) else value
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, list | tuple):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, Mapping):
        out.append(b"d")
        for key in sorted(value, key=lambda k: k.encode() if isinstance(k, str) else k):
            _encode(key, out)
            _encode(value[key], out)
        out.append(b"e")
    else:
        raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes) -> Any:
    """Decode one bencoded value; strings come back as ``str`` (UTF-8, surrogateescape)."""
    value, pos = _decode(data, 0)
    if pos != len(data):
        raise ValueError("trailing data after bencoded value")
    return value


def _decode(data: bytes, pos: int) -> tuple[Any, int]:
    if pos >= len(data):
        raise ValueError("truncated bencode")
    c = data[pos : pos + 1]
    if c == b"i":
        end = data.index(b"e", pos)
        return int(data[pos + 1 : end]), end + 1
    if c == b"l":
        pos += 1
        items: list[Any] = []
        while data[pos : pos + 1] != b"e":
            item, pos = _decode(data, pos)
            items.append(item)
        return items, pos + 1
    if c == b"d":
        pos += 1
        d: dict[str, Any] = {}
        while data[pos : pos + 1] != b"e":
            key, pos = _decode(data, pos)
            d[str(key)], pos = _decode(data, pos)
        return d, pos + 1
    if c.isdigit():
        colon = data.index(b":", pos)
        n = int(data[pos:colon])
        start = colon + 1
        if start + n > len(data):
            raise ValueError("truncated bencode string")
        return data[start : start + n].decode("utf-8", "surrogateescape"), start + n
    raise ValueError(f"bad bencode byte {c!r} at {pos}")


# ------------------------------------------------------------------------------------- client


class _NgProtocol(asyncio.DatagramProtocol):
    def __init__(self, client: RtpEngine) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.client._received(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable: rtpengine is down. Let the retransmit timer report it.
        log.debug("ng socket error: %s", exc)


class RtpEngine:
    """An ng-protocol client for one rtpengine.

    ``offer``/``answer`` return the rewritten SDP (``bytes``); ``delete`` ends the call's media;
    ``query`` returns rtpengine's statistics dict (packet counters per stream).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2223,
        *,
        timeout: float = 2.0,
        retransmit: float = 0.25,
    ) -> None:
        self.addr = (host, port)
        self.timeout = timeout
        self.retransmit = retransmit
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def open(self) -> None:
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _NgProtocol(self), remote_addr=self.addr
        )
        self._transport = transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(MediaError("client closed"))
        self._pending.clear()

    def _received(self, data: bytes) -> None:
        cookie, sep, payload = data.partition(b" ")
        fut = self._pending.get(cookie.decode("ascii", "replace"))
        if not sep or fut is None or fut.done():
            return  # a late answer to a retransmitted or timed-out command
        try:
            value = bdecode(payload)
        except ValueError as exc:
            fut.set_exception(MediaError(f"bad ng answer: {exc}"))
            return
        if not isinstance(value, dict):
            fut.set_exception(MediaError("ng answer is not a dictionary"))
            return
        fut.set_result(value)

    async def command(self, command: str, **params: Any) -> dict[str, Any]:
        """Send one ng command and return the answer dict (``result`` checked)."""
        await self.open()
        assert self._transport is not None
        cookie = secrets.token_hex(8)
        body = {"command": command, **{k.replace("_", "-"): v for k, v in params.items()}}
        data = cookie.encode() + b" " + bencode(body)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cookie] = fut
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            while True:
                self._transport.sendto(data)
                wait = min(self.retransmit, deadline - loop.time())
                if wait <= 0:
                    raise MediaError(f"rtpengine {self.addr[0]}:{self.addr[1]} did not answer")
                try:
                    answer = await asyncio.wait_for(asyncio.shield(fut), wait)
                    break
                except TimeoutError:
                    continue
        finally:
            self._pending.pop(cookie, None)
        if answer.get("result") == "error":
            raise MediaError(str(answer.get("error-reason", "rtpengine error")))
        return answer

    async def ping(self) -> bool:
        return (await self.command("ping")).get("result") == "pong"

    async def offer(
        self,
        sdp: bytes,
        call_id: str,
        from_tag: str,
        *,
        flags: list[str] | None = None,
        replace: list[str] | None = None,
        direction: list[str] | None = None,
        ice: str = "remove",
        codec: dict[str, list[str]] | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Rewrite an offer so media flows through rtpengine; returns the SDP to forward.
        ``codec``: rtpengine's codec manipulation (``{"strip": [...], "except": [...]}``);
        ``profile``: the ng parameters of the target's media profile (``calls/profiles.py``),
        over ``ice``."""
        params: dict[str, Any] = {
            "sdp": sdp,
            "call_id": call_id,
            "from_tag": from_tag,
            "replace": replace or ["origin", "session-connection"],
            "ICE": ice,
        }
        if flags:
            params["flags"] = flags
        if direction:
            params["direction"] = direction
        if codec:
            params["codec"] = codec
        _merge(params, profile)
        answer = await self.command("offer", **params)
        return str(answer["sdp"]).encode("utf-8", "surrogateescape")

    async def answer(
        self,
        sdp: bytes,
        call_id: str,
        from_tag: str,
        to_tag: str,
        *,
        flags: list[str] | None = None,
        replace: list[str] | None = None,
        ice: str = "remove",
        profile: Mapping[str, Any] | None = None,
    ) -> bytes:
        """rtpengine's version of an answer (``profile``: as for :meth:`offer`, of the
        offerer, who receives it)."""
        params: dict[str, Any] = {
            "sdp": sdp,
            "call_id": call_id,
            "from_tag": from_tag,
            "to_tag": to_tag,
            "replace": replace or ["origin", "session-connection"],
            "ICE": ice,
        }
        if flags:
            params["flags"] = flags
        _merge(params, profile)
        answer = await self.command("answer", **params)
        return str(answer["sdp"]).encode("utf-8", "surrogateescape")

    async def delete(self, call_id: str, from_tag: str | None = None) -> None:
        """Tear down a call's media. Unknown calls are not an error (idempotent teardown)."""
        params: dict[str, Any] = {"call_id": call_id}
        if from_tag:
            params["from_tag"] = from_tag
        try:
            await self.command("delete", **params)
        except MediaError as exc:
            if "Unknown call-id" not in str(exc):
                raise

    async def query(self, call_id: str) -> dict[str, Any]:
        return await self.command("query", call_id=call_id)


def _merge(params: dict[str, Any], profile: Mapping[str, Any] | None) -> None:
    """Add a profile's ng parameters (its ``flags`` after the caller's)."""
    for key, value in (profile or {}).items():
        if key == "flags":
            params["flags"] = [*params.get("flags", []), *value]
        else:
            params[key] = value


def connection_address(sdp: bytes) -> str | None:
    """The first ``c=`` address of an SDP body (session or media level)."""
    for line in sdp.splitlines():
        if line.startswith(b"c="):
            parts = line[2:].split()
            if len(parts) >= 3:
                return parts[2].decode("ascii", "replace")
    return None
