"""The contact centre's portal pages on a tenant's host: call queues (list, edit, delete), an
extension's agent skills, the live wallboard with its supervision buttons, the queue reports,
and the end user's "My queues" (log in and out, ready and not ready).

Queue configuration needs ``routing.manage`` (as ring groups); the wallboard is also open to a
queue's supervisors (their own queues only); "My queues" to any user with an extension. Every
write is ``callcenter.actions``'; the figures are ``callcenter.wallboard``'s and
``callcenter.stats``'."""

from __future__ import annotations

import logging
from functools import wraps

from django import forms
from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from callcenter import actions as cc
from callcenter.agents import agent_states
from callcenter.choices import AgentState, QueueStrategy
from callcenter.models import Queue, QueueAgent
from pbx.portal.access import host_tenant, tenant_member_required, tenant_permission_required
from pbx.portal.export import csv_response
from pbx.portal.forms import extension_choices
from pbx.portal.queue_forms import (
    READY_REASONS,
    AgentSkillsForm,
    AgentStateForm,
    QueueForm,
    queue_initial,
    skills_text,
)
from pbx.portal.routing_forms import destination_options
from telephony.models import Extension
from tenants.choices import Permission

from .common import (
    actor,
    button_action,
    edit_page,
    form_action,
    list_view,
    page,
    referenced_delete_page,
)
from .routing import destination_label, routing_admin

log = logging.getLogger(__name__)

SECTION_QUEUES = "queues"
SECTION_WALLBOARD = "wallboard"
SECTION_REPORTS = "queue_reports"
SECTION_MINE = "my_queues"
#: The web app's buttons (besides "Not ready", which has a reason): the state each sets.
STATE_BUTTONS = (
    ("login", AgentState.READY, "Log in"),
    ("logout", AgentState.LOGGED_OUT, "Log out"),
    ("ready", AgentState.READY, "Ready"),
)


def _own_extension(request) -> Extension | None:
    return Extension.objects.filter(user_id=request.user.pk).first()


# --------------------------------------------------------------------------------- queues


def _music_choices() -> list[tuple[int, str]]:
    from audio.models import MusicClass

    return [(m.pk, m.name) for m in MusicClass.objects.order_by("name")]


def _prompt_choices() -> list[tuple[int, str]]:
    from audio.models import Prompt

    return [(p.pk, p.name) for p in Prompt.objects.order_by("name")]


def _waiting_now(request) -> dict[str, int]:
    """Callers waiting per queue number, over every engine ({} when Redis is unreachable:
    the list still renders)."""
    from callcenter.wallboard import waiting_callers
    from telephony.engine import store

    try:
        client = store.client()
        try:
            callers = waiting_callers(client, host_tenant(request).schema_name)
        finally:
            client.close()
    except Exception:
        log.exception("callers waiting unavailable")
        return {}
    return {number: len(waiting) for number, waiting in callers.items()}


@routing_admin
def queue_list(request):
    strategies = dict(QueueStrategy.choices)
    waiting = _waiting_now(request)
    return list_view(
        request,
        Queue.objects.prefetch_related("agents"),
        "portal/callcenter/queue_list.html",
        section=SECTION_QUEUES,
        search=("number", "name"),
        sorts={"number": "number", "name": "name"},
        default="number",
        rows=lambda queues: [
            {
                "queue": q,
                "strategy": strategies.get(q.strategy, q.strategy),
                "agents": len(q.agents.all()),
                "waiting": waiting.get(q.number, 0),
                "overflow": destination_label(q.overflow) or "Goodbye, then hang up",
            }
            for q in queues
        ],
    )


@routing_admin
def queue_edit(request, pk=None):
    """A queue's page (a new one without ``pk``): every setting, its agents in hunt order."""
    qs = Queue.objects.select_related("music_class", "greeting").prefetch_related(
        "agents__extension", "supervisors"
    )
    queue = get_object_or_404(qs, pk=pk) if pk else None
    form = QueueForm(
        request.POST or None,
        initial=queue_initial(queue) if queue is not None else None,
        targets=destination_options(host_tenant(request)),
        extensions=extension_choices(),
        agents=[a.extension.number for a in queue.agents.all()] if queue is not None else (),
        music=_music_choices(),
        prompts=_prompt_choices(),
    )
    return edit_page(
        request,
        form,
        queue,
        create=cc.do_create_queue,
        update=cc.do_update_queue,
        saved=lambda fields: f"Queue {fields['number']} {fields['name']} saved.",
        back="portal:queue_list",
        template="portal/callcenter/queue_form.html",
        section=SECTION_QUEUES,
    )


@routing_admin
def queue_delete(request, pk):
    """GET: what deleting the queue means (or what still sends calls to it); POST: delete
    (a refusal, 409 in the API, is the page's error message)."""
    return referenced_delete_page(
        request,
        Queue,
        pk,
        kind="queue",
        title=lambda q: f"Queue {q.number} {q.name}",
        delete=cc.do_delete_queue,
        back="portal:queue_list",
        section=SECTION_QUEUES,
        used_by=lambda q: cc.queue_references(q.number, exclude_queue=q.pk),
    )


@routing_admin
def agent_skills(request, pk):
    """An extension's skills (skills-based queues) and the queues it takes calls from."""
    ext = get_object_or_404(Extension.objects.prefetch_related("skills"), pk=pk)
    form = AgentSkillsForm(request.POST or None, initial={"skills": skills_text(ext)})
    if (
        request.method == "POST"
        and form.is_valid()
        and form_action(
            request,
            form,
            lambda who: cc.do_set_agent_skills(ext, actor=who, skills=form.cleaned_data["skills"]),
            f"The skills of {ext.number} are saved.",
        )
    ):
        return redirect("portal:agent_skills", pk=ext.pk)
    queues = Queue.objects.filter(agents__extension=ext).order_by("number")
    ctx = {"form": form, "object": ext, "queues": queues}
    return page(request, "portal/callcenter/agent_skills.html", ctx, section="extensions")


# ------------------------------------------------------------------------------ wallboard


def _supervised(request) -> set[str] | None:
    """The queue numbers the user may watch (as the wallboard socket decides): None for
    every queue (who holds ``tenant.settings``), else the queues their own extension
    supervises (empty: none)."""
    from callcenter.wallboard import viewer_queues

    return viewer_queues(request.user, host_tenant(request))


def wallboard_access(view):
    """Tenant admins (``routing.manage``) and queue supervisors (their own queues only);
    anyone else 404. The view finds the queues it may show in ``request.wallboard_queues``
    (None: every queue)."""

    @tenant_member_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        allowed = _supervised(request)
        if allowed is not None and not allowed:
            raise Http404
        request.wallboard_queues = allowed
        return view(request, *args, **kwargs)

    return wrapped


def _board(request) -> dict:
    from callcenter.wallboard import wallboard

    return wallboard(host_tenant(request), queues=getattr(request, "wallboard_queues", None))


#: The agents' states as the wallboard counts and shows them, in its order.
AGENT_LABELS = (
    ("ready", "Ready"),
    ("on_call", "On call"),
    ("ringing", "Ringing"),
    ("wrap_up", "Wrap-up"),
    ("not_ready", "Not ready"),
    ("logged_out", "Logged out"),
)
MODES = (("listen", "Listen"), ("whisper", "Whisper"), ("barge", "Barge"))


def duration(seconds: float | None) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour), as the page's ticking counters show it."""
    total = max(0, int(seconds or 0))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _displayed(board: dict) -> dict:
    """The payload with what the template shows besides it: counters as text at ``at``,
    the agents' counts in the page's order, their states' labels."""
    at = board["at"]
    labels = dict(AGENT_LABELS)
    for q in board["queues"]:
        q["longest_text"] = duration(q["longest_wait"])
        q["agent_counts"] = [(k, label, q["agents"].get(k, 0)) for k, label in AGENT_LABELS]
        for c in q["callers"]:
            c["waited_text"] = duration(at - c["since"]) if c.get("since") else ""
        for a in q["agent_list"]:
            a["state_label"] = labels.get(a["state"], a["state"])
            a["since_text"] = duration(at - a["since"]) if a.get("since") else ""
    return board


@wallboard_access
def wallboard_page(request):
    """The live wallboard: the payload rendered on load, then kept current by
    ``static/portal/wallboard.js`` from the wallboard WebSocket (no polling)."""
    me = _own_extension(request)
    ctx = {
        "board": _displayed(_board(request)),
        "supervisor": me.number if me is not None else "",
        "admin": request.wallboard_queues is None,
        "modes": MODES,
        "agent_labels": dict(AGENT_LABELS),
    }
    return page(request, "portal/callcenter/wallboard.html", ctx, section=SECTION_WALLBOARD)


class SuperviseForm(forms.Form):
    queue = forms.CharField()
    agent = forms.CharField()
    mode = forms.ChoiceField(choices=MODES)


@require_POST
@wallboard_access
def wallboard_supervise(request):
    """A wallboard button: ring the user's own phone and join it to the agent's queue call
    (the same action as the API's ``/queues/{id}/supervise/``). From the page's script
    (``X-Requested-With: fetch``) the answer is ``{"message"}`` (200, or the refusal's
    status); without it, a redirect back with the message."""
    from pbx.errors import PbxError

    form = SuperviseForm(request.POST)
    me = _own_extension(request)
    status, text = 200, ""
    if not form.is_valid():
        status, text = 400, "Choose an agent and how to join the call."
    elif me is None:
        status, text = 409, "You need an extension of your own to supervise calls."
    else:
        allowed = request.wallboard_queues
        number = form.cleaned_data["queue"]
        if allowed is not None and number not in allowed:
            raise Http404
        queue = get_object_or_404(Queue, number=number)
        mode, agent = form.cleaned_data["mode"], form.cleaned_data["agent"]
        try:
            cc.do_supervise(
                queue, actor=actor(request), supervisor=me.number, agent=agent, mode=mode
            )
        except PbxError as exc:
            status, text = exc.status, exc.message
        else:
            text = f"Your phone ({me.number}) rings: answer it to {mode} on {agent}'s call."
    if request.headers.get("X-Requested-With") == "fetch":
        return JsonResponse({"message": text}, status=status)
    (messages.success if status == 200 else messages.error)(request, text)
    return redirect("portal:wallboard")


# ------------------------------------------------------------------------------ my queues


def _my_queues(ext) -> list[dict]:
    """The user's queues with their state in each (logged out, not ready and why, ready,
    wrap-up)."""
    import time

    queues = list(
        Queue.objects.filter(agents__extension=ext)
        .distinct()
        .order_by("number")
        .prefetch_related("agents__extension")
    )
    states = agent_states(queues) if queues else {}
    labels = dict(AgentState.choices)
    now = time.time()
    rows = []
    for q in queues:
        status = states[(q.number, ext.number)]
        state = status.effective(now)
        rows.append(
            {
                "queue": q,
                "state": state,
                "label": labels.get(state, state),
                "reason": status.reason if state == AgentState.NOT_READY else "",
            }
        )
    return rows


@tenant_member_required
def my_queues(request):
    """GET: the user's queues and state in each; POST: log in or out, ready or not ready
    (with a reason) in one queue or all of them."""
    ext = _own_extension(request)
    if ext is None:
        return page(request, "portal/callcenter/my_queues.html", {"object": None},
                    section=SECTION_MINE)  # fmt: skip
    if request.method == "POST":
        form = AgentStateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            queue = None
            if data["queue"]:
                queue = get_object_or_404(
                    Queue.objects.filter(agents__extension=ext).distinct(), number=data["queue"]
                )
            reason = data["reason"] if data["state"] == AgentState.NOT_READY else ""
            label = dict(AgentState.choices)[data["state"]].lower()
            where = f"queue {queue.number}" if queue is not None else "all your queues"
            button_action(
                request,
                lambda who: cc.do_set_agent_state(
                    actor=who,
                    extension=ext.number,
                    state=data["state"],
                    queue=queue.number if queue is not None else None,
                    reason=reason,
                    by="portal",
                ),
                f"You are {label} in {where}.",
            )
        else:
            messages.error(request, "Choose a state.")
        return redirect("portal:my_queues")
    ctx = {
        "object": ext,
        "rows": _my_queues(ext),
        "reasons": READY_REASONS,
        "state_buttons": STATE_BUTTONS,
    }
    return page(request, "portal/callcenter/my_queues.html", ctx, section=SECTION_MINE)


def has_queues(request) -> bool:
    """Whether the user's own extension is an agent of a queue (the menu's "My queues")."""
    return QueueAgent.objects.filter(extension__user_id=request.user.pk).exists()


# -------------------------------------------------------------------------------- reports


class QueueReportForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput({"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput({"type": "date"}))
    queue = forms.ChoiceField(label="Queue", required=False)
    bucket = forms.ChoiceField(
        label="Per",
        required=False,
        choices=[("", "Whole period"), ("day", "Day"), ("hour", "Hour")],
    )

    def __init__(self, *args, queues=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["queue"].choices = [("", "Every queue")] + [
            (q.number, f"{q.number} {q.name}") for q in queues
        ]

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            self.add_error("end", "The last day is before the first.")
        if start and end and (end - start).days > 366:
            self.add_error("end", "At most a year at a time.")
        return data


@tenant_permission_required(Permission.TENANT_SETTINGS)
def queue_reports(request):
    """Queue statistics per queue (optionally per day) and per agent over chosen days, with
    a CSV download of each table, as the API's statistics give them."""
    from billing.reports import tenant_today, time_zone
    from callcenter.stats import agent_stats, queue_stats

    tenant = host_tenant(request)
    queues = list(Queue.objects.order_by("number"))
    if "start" in request.GET:
        data = request.GET
    else:
        today = tenant_today(tenant)
        data = {"start": str(today.replace(day=1)), "end": str(today), "queue": "", "bucket": ""}
    form = QueueReportForm(data, queues=queues)
    ctx: dict = {"form": form, "queues": None}
    if form.is_valid():
        c = form.cleaned_data
        tz = time_zone(tenant)
        per_queue = queue_stats(
            c["start"], c["end"], queue=c["queue"] or None, bucket=c["bucket"] or None, tz=tz
        )
        per_agent = agent_stats(c["start"], c["end"], tz=tz)
        export = request.GET.get("export")
        if export in ("queues", "agents"):
            rows = per_queue if export == "queues" else per_agent
            table = _rows(rows)
            columns = [(name, name) for name in _columns(table)]
            return csv_response(
                request, table, columns, name=f"queue-{export}-{c['start']}-{c['end']}"
            )
        queue_rows, agent_rows = _rows(per_queue), _rows(per_agent)
        queue_columns, agent_columns = _columns(queue_rows), _columns(agent_rows)
        ctx.update(
            {
                "queue_columns": [_heading(c) for c in queue_columns],
                "agent_columns": [_heading(c) for c in agent_columns],
                "queue_rows": [{"cells": [r.get(c) for c in queue_columns]} for r in queue_rows],
                "agent_rows": [{"cells": [r.get(c) for c in agent_columns]} for r in agent_rows],
                "query": {k: str(v or "") for k, v in c.items()},
            }
        )
    return page(request, "portal/callcenter/reports.html", ctx, section=SECTION_REPORTS)


def _rows(stats) -> list[dict]:
    """The statistics' rows as dicts (a list of rows, or a dict with ``items``/``rows``)."""
    if isinstance(stats, dict):
        stats = stats.get("items") or stats.get("rows") or stats.get("queues") or []
    return [dict(r) if not isinstance(r, dict) else r for r in stats]


HIDDEN_COLUMNS = frozenset({"id", "queue_id"})


def _heading(column: str) -> str:
    return column.replace("_", " ")


def _columns(rows: list[dict]) -> list[str]:
    seen: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in seen and key not in HIDDEN_COLUMNS and not isinstance(value, dict | list):
                seen.append(key)
    return seen


__all__ = [
    "agent_skills",
    "has_queues",
    "my_queues",
    "queue_delete",
    "queue_edit",
    "queue_list",
    "queue_reports",
    "wallboard_page",
    "wallboard_supervise",
]
