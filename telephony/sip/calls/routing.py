"""Where a call goes (pure: no I/O): from the tenant's snapshot, the caller and the dialled
number to a :class:`Destination`, which the router hands to the destination of its kind
(``destinations/``).

Today's plan, for a number of the caller's own tenant:

- not an extension: an outside number, when an :func:`outside` rule routes it (``outbound.py``:
  emergency numbers, the outbound rules, call barring; a ``trunk`` destination or 403);
- otherwise, or a disabled extension: 404 (480, logged, when a forward led there);
- forward always: straight on to the target, the extension does not ring;
- DND counts as busy: the busy target if there is one (as PortSIP sends a DND extension's
  calls to its forward/voicemail), else 486;
- otherwise the extension rings (``extension``); what happens when it is busy, does not
  answer or has no phone registered is decided by :func:`after_refusal`,
  :func:`after_no_answer` and :func:`unavailable`.

Where a case has no forward to a number, the extension's mailbox takes the call when it says
so (:func:`voicemail`: always, on busy and DND, on no answer and not registered).

A destination type that needs numbers of its own (feature codes, trunks, IVRs...) adds a rule
with :func:`rule`: rules are tried in order before the extension plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from telephony.sip.contract import ExtensionSnapshot, TenantSnapshot

from .forwarding import Path, not_followed, on_refusal

__all__ = [
    "Destination",
    "Path",
    "after_no_answer",
    "after_refusal",
    "outside",
    "reject",
    "route",
    "rule",
    "unavailable",
]


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a call goes: ``kind`` names the destination type that takes it (``extension``,
    ``forward``, ``reject``, or a plugged-in one), ``target`` the number, ``data`` what that
    type needs. ``notes`` are forwards that were not followed, and why (logged)."""

    kind: str
    target: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


Rule = Callable[[TenantSnapshot, ExtensionSnapshot, str, Path], Destination | None]
RULES: list[Rule] = []
OUTSIDE: list[Rule] = []


def rule(fn: Rule) -> Rule:
    """Register a routing rule: ``fn(tenant, caller, number, path)`` returns the destination
    for numbers it knows, None for the rest."""
    RULES.append(fn)
    return fn


def outside(fn: Rule) -> Rule:
    """Register a rule for numbers that are not an extension of the tenant, tried after
    every :func:`rule` (so a feature's own numbers win whatever the import order)."""
    OUTSIDE.append(fn)
    return fn


def reject(
    code: int, *, status: str = "", reason: str = "", warning: str = "", notes: tuple[str, ...] = ()
) -> Destination:
    """The caller is answered ``code``; ``status``/``reason`` for the CDR ("" = from the
    code), ``warning`` is logged."""
    data = {"code": code, "status": status, "reason": reason, "warning": warning}
    return Destination("reject", data=data, notes=notes)


def forward(ext: ExtensionSnapshot, reason: str, target: str) -> Destination:
    return Destination("forward", target, {"reason": reason, "from": ext.number})


def voicemail(ext: ExtensionSnapshot, why: str, code: int = 0) -> Destination | None:
    """The extension's mailbox, when it takes the calls of case ``why`` (``always``,
    ``busy``, ``no_answer``); None otherwise. ``code`` is the caller's answer should the
    mailbox not be reachable (no media server): 486 for busy, else 480 by default."""
    box = ext.voicemail
    if box is None or not box.enabled:
        return None
    wanted = {"always": box.always, "busy": box.busy, "no_answer": box.no_answer}[why]
    if not wanted:
        return None
    reason = "busy" if why == "busy" else "unavailable"
    fallback = code or (486 if why == "busy" else 480)
    return Destination("voicemail", ext.number, {"reason": reason, "code": fallback})


def route(
    tenant: TenantSnapshot, caller: ExtensionSnapshot, number: str, path: Path
) -> Destination:
    """The destination of ``number`` dialled by ``caller``; ``path.visited`` ends with
    ``number``."""
    for fn in RULES:
        found = fn(tenant, caller, number, path)
        if found is not None:
            return found
    ext = tenant.extensions.get(number)
    if ext is None:
        for fn in OUTSIDE:
            found = fn(tenant, caller, number, path)
            if found is not None:
                return found
    if ext is None or not ext.enabled:
        if path.hops:
            return reject(
                480,
                reason=f"forward target {number} not found",
                warning=f"forward target {number!r} of tenant {tenant.schema} is not an extension",
            )
        return reject(404)
    notes: list[str] = []
    if ext.forward_always:
        why = not_followed(ext, ext.forward_always, path)
        if not why:
            return forward(ext, "always", ext.forward_always)
        notes.append(why)
    always = voicemail(ext, "always")
    if always is not None:
        return always
    if ext.dnd:
        if ext.forward_busy:
            why = not_followed(ext, ext.forward_busy, path)
            if not why:
                return forward(ext, "busy", ext.forward_busy)
            notes.append(why)
        box = voicemail(ext, "busy")
        if box is not None:
            return Destination(box.kind, box.target, box.data, tuple(notes))
        return reject(486, notes=tuple(notes))
    return Destination("extension", number, {"extension": ext}, tuple(notes))


def _forward_or(
    ext: ExtensionSnapshot | None, reason: str, target: str, path: Path, otherwise: Destination
) -> Destination:
    if ext is None or not target:
        return otherwise
    why = not_followed(ext, target, path)
    if not why:
        return forward(ext, reason, target)
    return Destination(otherwise.kind, otherwise.target, otherwise.data, (why,))


def after_refusal(tenant: TenantSnapshot, number: str, code: int, path: Path) -> Destination:
    """Every phone of extension ``number`` refused, ``code`` the best answer: its busy or
    no-answer forward, else ``code`` to the caller."""
    ext = tenant.extensions.get(number)
    reason, target = on_refusal(ext, code) if ext is not None else ("", "")
    box = voicemail(ext, reason, code) if ext is not None and reason else None
    return _forward_or(ext, reason, target, path, box or reject(code))


def after_no_answer(tenant: TenantSnapshot, number: str, path: Path) -> Destination:
    """Extension ``number`` rang out: its no-answer forward, else 480."""
    ext = tenant.extensions.get(number)
    target = ext.forward_no_answer if ext is not None else ""
    otherwise = reject(480, status="no_answer", reason="no answer")
    box = voicemail(ext, "no_answer") if ext is not None else None
    return _forward_or(ext, "no_answer", target, path, box or otherwise)


def unavailable(ext: ExtensionSnapshot, path: Path) -> Destination:
    """No phone of ``ext`` is registered: it cannot answer, so its no-answer forward, else
    its mailbox (as for no answer), else 480."""
    otherwise = voicemail(ext, "no_answer") or reject(480)
    return _forward_or(ext, "unavailable", ext.forward_no_answer, path, otherwise)
