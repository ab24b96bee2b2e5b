"""Bulk actions on a list page: the checked rows' ids, one action per object through the
existing ``do_*`` actions (each writes its own audit entry), and a report per row.

Only the host's tenant's objects are touched: the ids are looked up in the list's own queryset
(the tenant's schema), so an id that is not there — another tenant's, a deleted one, garbage —
is reported as not found and nothing is done with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlparse

from django.contrib import messages
from django.db.models import QuerySet
from django.utils.http import url_has_allowed_host_and_scheme

from pbx.errors import PbxError

from .views.common import actor

#: At most this many objects per bulk request (a page holds 25; "select all" stays on one page).
MAX_SELECTED = 500


@dataclass
class BulkOutcome:
    changed: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)


def selected_ids(request) -> list[int]:
    """The checked rows' primary keys (``pk`` fields), in order, without repeats or junk."""
    seen: dict[int, None] = {}
    for raw in request.POST.getlist("pk")[:MAX_SELECTED]:
        if raw.isdigit():
            seen.setdefault(int(raw), None)
    return list(seen)


def selected(queryset: QuerySet, ids: list[int]) -> tuple[list[Any], list[int]]:
    """The objects of ``queryset`` among ``ids`` (in the order given) and the ids not found."""
    found = {obj.pk: obj for obj in queryset.filter(pk__in=ids)}
    return [found[i] for i in ids if i in found], [i for i in ids if i not in found]


class Selection(NamedTuple):
    """A bulk POST: the chosen ``action``, the list page to go ``back`` to, the checked
    ``objects`` found in the list's queryset and the ids ``missing`` from it."""

    action: str
    back: str
    objects: list[Any]
    missing: list[int]


def selection(request, queryset: QuerySet, fallback: str) -> Selection:
    """Read a bulk form's POST: its action, where to return (``fallback`` when the form's
    ``next`` is not a path on this host) and the checked rows among ``queryset``."""
    objects, missing = selected(queryset, selected_ids(request))
    return Selection(request.POST.get("action", ""), back_to(request, fallback), objects, missing)


def run(
    request,
    objects: list[Any],
    missing: list[int],
    action: Callable[[Any, Any], Any],
    *,
    label: Callable[[Any], str],
) -> BulkOutcome:
    """``action(obj, actor)`` for each object; a refusal (``PbxError``) is kept with its
    reason and the others go on (each action is its own transaction)."""
    outcome = BulkOutcome(not_found=[str(i) for i in missing])
    who = actor(request)
    for obj in objects:
        try:
            action(obj, who)
        except PbxError as exc:
            outcome.refused.append((label(obj), exc.message))
        else:
            outcome.changed.append(label(obj))
    return outcome


def confirm_delete(
    request,
    objects: list[Any],
    missing: list[int],
    *,
    delete: Callable[[Any, Any], Any],
    label: Callable[[Any], str],
    rows: Callable[[], list[dict]],
    noun: str,
    template: str,
    section: str,
    back: str,
):
    """Deleting the checked objects: first a page that lists them with what goes with each
    (``rows()``, rendered by ``template``, which extends ``portal/_bulk_delete.html``); once
    confirmed there, ``delete(obj, actor)`` for each and a report on the list page."""
    from django.shortcuts import redirect

    from .views.common import page

    if request.POST.get("confirm") != "yes":
        ctx = {
            "rows": rows(),
            "pks": [obj.pk for obj in objects],
            "missing": missing,
            "noun": noun,
            "back": back,
        }
        return page(request, template, ctx, section=section)
    report(request, run(request, objects, missing, delete, label=label), done="deleted", noun=noun)
    return redirect(back)


def report(request, outcome: BulkOutcome, *, done: str, noun: str) -> None:
    """One message per kind of result: ``3 extensions disabled: 101, 102, 103``, then the
    refusals with their reasons, then the ids not found."""
    if outcome.changed:
        messages.success(
            request, f"{_count(len(outcome.changed), noun)} {done}: {', '.join(outcome.changed)}."
        )
    if outcome.refused:
        reasons = "; ".join(f"{who} — {why}" for who, why in outcome.refused)
        messages.error(request, f"{len(outcome.refused)} refused: {reasons}")
    if outcome.not_found:
        messages.warning(
            request,
            f"{len(outcome.not_found)} not found (ids {', '.join(outcome.not_found)}): "
            "nothing was done to them.",
        )
    if not (outcome.changed or outcome.refused or outcome.not_found):
        messages.info(request, f"No {noun}s were selected.")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def back_to(request, fallback: str) -> str:
    """Where to return after a bulk action: the list page the form was on (its query string
    kept), if it is a path on this host; else ``fallback``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts=None):
        parsed = urlparse(target)
        if not parsed.netloc and target.startswith("/"):
            return target
    return fallback
