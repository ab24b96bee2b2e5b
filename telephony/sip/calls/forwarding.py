"""Call forwarding policy (pure: no I/O): which forward applies, whether it is followed, and
what the target is shown.

An extension forwards always (it does not ring), on busy (every phone answers 486/600/603, or
DND) and on no answer (its ringing timed out, or no phone is registered: "unavailable"). A
forward back to an extension the call already rang (A->B->A), or beyond the engine's
``max_forward_hops`` or the caller's Max-Forwards, is not followed: the call is handled where
it is, as if that forward were off. The target sees ``Diversion`` (RFC 5806).
"""

from __future__ import annotations

from dataclasses import dataclass

from telephony.sip.contract import ExtensionSnapshot
from telephony.sip.message import SipURI

__all__ = [
    "BUSY_CODES",
    "DIVERSION_REASONS",
    "Path",
    "diversion",
    "not_followed",
    "on_refusal",
]

# Why a call was forwarded, as RFC 5806 Diversion reasons.
DIVERSION_REASONS = {
    "always": "unconditional",
    "busy": "user-busy",
    "no_answer": "no-answer",
    "unavailable": "unavailable",
}
BUSY_CODES = frozenset({486, 600, 603})


@dataclass(frozen=True, slots=True)
class Path:
    """Where a call has been: every extension it was routed to (the one being routed now
    last) and the forwarding steps it took, and how many it may take."""

    visited: tuple[str, ...] = ()
    hops: int = 0
    max_hops: int = 5  # the lower of the engine's max_forward_hops and the caller's Max-Forwards


def not_followed(ext: ExtensionSnapshot, target: str, path: Path) -> str:
    """Why forwarding ``ext`` to ``target`` is not followed ("" when it is)."""
    if target in path.visited:
        return f"forward {ext.number} -> {target} would loop; not followed"
    if path.hops >= path.max_hops:
        return f"forwarding stops after {path.hops} steps"
    return ""


def on_refusal(ext: ExtensionSnapshot, code: int) -> tuple[str, str]:
    """(reason, target) of the forward that applies when every phone of ``ext`` refused the
    call with (best) ``code``; ("", "") when none does."""
    if code in BUSY_CODES:
        return "busy", ext.forward_busy
    if code in (408, 480):
        return "no_answer", ext.forward_no_answer
    return "", ""


def diversion(domain: str, number: str, reason: str, counter: int) -> str:
    """A ``Diversion`` header value (RFC 5806) for a forward of ``number`` for ``reason``."""
    return f"<{SipURI(domain, user=number)}>;reason={DIVERSION_REASONS[reason]};counter={counter}"
