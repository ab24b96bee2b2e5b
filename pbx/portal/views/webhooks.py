"""Webhooks on a tenant's host (``webhooks.manage``): endpoints, their delivery log, and a replay
from an event id. Every write goes through ``events.actions``; a new or rotated signing secret is
rendered once, never stored in a session or message."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from events import actions
from events.choices import EVENT_TYPES, TOPICS, DeliveryState
from events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from pbx.errors import PbxError
from pbx.forms import add_action_errors
from pbx.portal.access import tenant_permission_required
from pbx.portal.export import Column, csv_response, wants_csv
from pbx.portal.lists import list_page
from tenants.choices import Permission

from .common import actor, button_action, page

SECTION = "webhooks"
manage = tenant_permission_required(Permission.WEBHOOKS_MANAGE)

EVENT_CHOICES = [
    ("*", "Every event"),
    *((t, f"Topic: {t}") for t in sorted(TOPICS)),
    *((t, t) for t in sorted(EVENT_TYPES)),
]


class WebhookForm(forms.Form):
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")
    description = forms.CharField(max_length=255, required=False)
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=EVENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="Event types, whole topics, or every event.",
    )
    enabled = forms.BooleanField(required=False, initial=True)


class WebhookEditForm(WebhookForm):
    rotate_secret = forms.BooleanField(
        required=False, label="Issue a new signing secret (the old one stops working)"
    )


class ReplayForm(forms.Form):
    from_event_id = forms.IntegerField(
        min_value=1, label="From event id", help_text="This event and every later one."
    )


@manage
def webhook_list(request):
    ctx = list_page(
        request,
        WebhookEndpoint.objects.all(),
        search=("url", "description"),
        sorts={"url": "url", "created": "created_at"},
        default="url",
    )
    if wants_csv(request):
        return csv_response(request, ctx["queryset"], WEBHOOK_COLUMNS, name="webhooks")
    return page(request, "portal/webhooks/list.html", ctx, section=SECTION)


# No signing secret: secrets are never exported.
WEBHOOK_COLUMNS: list[Column] = [
    ("URL", "url"),
    ("Description", "description"),
    ("Events", "event_types"),
    ("Enabled", "enabled"),
    ("Created", "created_at"),
    ("Updated", "updated_at"),
]
DELIVERY_COLUMNS: list[Column] = [
    ("Delivery id", "id"),
    ("Endpoint", "endpoint.url"),
    ("Event id", "event_id"),
    ("Event type", "event.type"),
    ("State", "get_state_display"),
    ("Attempts", "attempt"),
    ("Response status", "status_code"),
    ("Error", "error"),
    ("Replay", "replay"),
    ("Created", "created_at"),
    ("Last attempt", "last_attempt_at"),
    ("Next attempt", "next_attempt_at"),
    ("Delivered", "delivered_at"),
]


def _secret_page(request, endpoint, secret, *, created: bool):
    ctx = {"object": endpoint, "secret": secret, "created": created}
    return page(request, "portal/webhooks/secret.html", ctx, section=SECTION)


@manage
def webhook_add(request):
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = actions.do_create_webhook(actor=actor(request), **form.cleaned_data)
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            return _secret_page(request, endpoint, secret, created=True)
    return page(request, "portal/webhooks/form.html", {"form": form}, section=SECTION)


@manage
def webhook_edit(request, pk):
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    initial = {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
    }
    form = WebhookEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        rotate = data.pop("rotate_secret")
        changes = {k: v for k, v in data.items() if getattr(endpoint, k) != v}
        try:
            endpoint, secret = actions.do_update_webhook(
                endpoint, actor=actor(request), rotate_secret=rotate, **changes
            )
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            if secret:
                return _secret_page(request, endpoint, secret, created=False)
            messages.success(request, f"Webhook {endpoint.url} saved.")
            return redirect("portal:webhook_list")
    ctx = {
        "form": form,
        "object": endpoint,
        "replay_form": ReplayForm(),
        "recent_events": OutboxEvent.objects.order_by("-id")[:10],
    }
    return page(request, "portal/webhooks/form.html", ctx, section=SECTION)


@require_POST
@manage
def webhook_delete(request, pk):
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    button_action(
        request,
        lambda who: actions.do_delete_webhook(endpoint, actor=who),
        f"Webhook {endpoint.url} deleted.",
    )
    return redirect("portal:webhook_list")


@require_POST
@manage
def webhook_replay(request, pk):
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    form = ReplayForm(request.POST)
    if form.is_valid():
        try:
            queued = actions.do_replay_webhook(
                endpoint, from_event_id=form.cleaned_data["from_event_id"], actor=actor(request)
            )
        except PbxError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{queued} events queued for {endpoint.url}.")
            return redirect(f"{_deliveries_url()}?endpoint={endpoint.pk}")
    else:
        messages.error(request, "Give the id of an event to replay from.")
    return redirect("portal:webhook_edit", pk=endpoint.pk)


def _deliveries_url() -> str:
    from django.urls import reverse

    return reverse("portal:webhook_deliveries")


@manage
def webhook_deliveries(request):
    """The delivery log, newest first, by endpoint and state."""
    qs = WebhookDelivery.objects.select_related("event", "endpoint")
    keep = {}
    endpoint_id = request.GET.get("endpoint", "")
    if endpoint_id.isdigit():
        qs = qs.filter(endpoint_id=int(endpoint_id))
        keep["endpoint"] = endpoint_id
    state = request.GET.get("state", "")
    if state in DeliveryState.values:
        qs = qs.filter(state=state)
        keep["state"] = state
    ctx = list_page(
        request,
        qs,
        search=("endpoint__url", "event__type", "error"),
        sorts={"id": "id", "state": "state"},
        default="-id",
        keep=keep,
    )
    if wants_csv(request):
        return csv_response(request, ctx["queryset"], DELIVERY_COLUMNS, name="webhook-deliveries")
    ctx.update(
        endpoints=WebhookEndpoint.objects.order_by("url", "id"),
        states=DeliveryState.choices,
        endpoint_id=endpoint_id,
        state=state,
    )
    return page(request, "portal/webhooks/deliveries.html", ctx, section=SECTION)
