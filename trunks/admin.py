"""Admin for trunks and the DID pool; every write goes through ``trunks.actions`` (audited).

A trunk's password is a write-only field (left empty, the stored one stays); its live state
(from the engine) is shown read-only. Numbers are added one by one or as a range, and assigned
to or released from a tenant with the change form or the list's actions.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers

from pbx.admin import ActionAdmin, ActionForm
from pbx.audit import Actor
from pbx.errors import PbxError
from telephony.engine.carriers import trunk_states
from tenants.access import tenants_visible_to

from . import actions
from .models import DidNumber, Trunk

TRUNK_FIELDS = tuple(f for f in actions.EDITABLE if f not in ("addresses", "codecs"))


def _lines(text: str) -> list[str]:
    return [part for part in text.replace(",", "\n").split() if part]


class TrunkForm(ActionForm):
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The carrier account's password. On change: leave empty to keep it.",
    )
    addresses = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="An IP trunk's carrier addresses or networks, one a line.",
    )
    codecs = forms.MultipleChoiceField(
        required=False,
        choices=[(c, c) for c in actions.CODECS],
        widget=forms.CheckboxSelectMultiple,
        help_text="None: the engine's default.",
    )
    #: The owner of a new trunk given neither a tenant nor a dealer (a dealer admin's dealer).
    default_dealer = None

    class Meta:
        model = Trunk
        fields = ("tenant", "dealer", "shared_with", *TRUNK_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["addresses"] = "\n".join(self.instance.addresses or [])
            self.initial["codecs"] = list(self.instance.codecs or [])

    def clean_addresses(self):
        return _lines(self.cleaned_data.get("addresses") or "")

    def run_action(self):
        data = self.cleaned_data
        password = data.get("password") or None
        names = (*TRUNK_FIELDS, "addresses", "codecs")
        if self.instance.pk is None:
            tenant = data.get("tenant")
            dealer = data.get("dealer") or (None if tenant else self.default_dealer)
            return actions.do_create_trunk(
                actor=self.actor,
                fields={n: data[n] for n in names if n in data},
                password=password,
                tenant=tenant,
                dealer=dealer,
                shared_with=list(data.get("shared_with") or ()),
            )
        shared = None
        if "shared_with" in self.changed_data:
            shared = list(data.get("shared_with") or ())
        return actions.do_update_trunk(
            self.instance,
            actor=self.actor,
            fields=self.changes(names),
            password=password,
            shared_with=shared,
        )


@admin.register(Trunk)
class TrunkAdmin(ActionAdmin):
    form = TrunkForm
    list_display = ("name", "kind", "owner_label", "host", "enabled", "live_state")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "host")
    list_select_related = ("tenant", "dealer")
    ordering = ("name", "id")
    filter_horizontal = ("shared_with",)

    def get_readonly_fields(self, request, obj=None):
        # The owner is fixed once the trunk exists.
        return ("tenant", "dealer", "live_state") if obj else ("live_state",)

    @admin.display(description="State")
    def live_state(self, trunk) -> str:
        state = getattr(trunk, "_live_state", None)
        if state is None and trunk.pk is not None:
            state = trunk_states([trunk.pk]).get(trunk.pk)
        if not state:
            return "—"
        error = state.get("error")
        return f"{state['state']} ({error})" if error else state["state"]

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        cl = getattr(response, "context_data", {}).get("cl")
        if cl is not None:  # one Redis round trip for the page, not one per row
            rows = list(cl.result_list)
            states = trunk_states(t.pk for t in rows)
            for trunk in rows:
                trunk._live_state = states.get(trunk.pk)
        return response

    def save_related(self, request, form, formsets, change):
        """The action has set ``shared_with`` (and audited it)."""

    def delete_model(self, request, obj):
        self.refusal(request, actions.do_delete_trunk, obj)

    def delete_queryset(self, request, queryset):
        for trunk in queryset.order_by("pk"):
            self.delete_model(request, trunk)


# --------------------------------------------------------------------------------- numbers


class NumberAddForm(ActionForm):
    last = forms.CharField(
        required=False, help_text="The last number of a range (empty: one number)."
    )
    country = forms.CharField(
        required=False, max_length=2, help_text="ISO code, for numbers given in national form."
    )
    default_dealer = None

    class Meta:
        model = DidNumber
        fields = ("number", "last", "country", "dealer", "tenant", "trunk", "description")

    def validate_unique(self):
        """The action refuses numbers in the pool (in E.164, whatever form was typed)."""

    def run_action(self):
        data = self.cleaned_data
        created = actions.do_add_numbers(
            actor=self.actor,
            number=data["number"],
            last=data.get("last") or None,
            country=data.get("country") or "",
            dealer=data.get("dealer") or self.default_dealer,
            tenant=data.get("tenant"),
            trunk=data.get("trunk"),
            description=data.get("description") or "",
        )
        self.added = len(created)
        return created[0]


class NumberChangeForm(ActionForm):
    class Meta:
        model = DidNumber
        fields = ("dealer", "tenant", "trunk", "description")

    def run_action(self):
        number = self.instance
        changes = self.changes(("description", "trunk", "dealer"))
        if changes:
            number = actions.do_update_number(number, actor=self.actor, fields=changes)
        if "tenant" in self.changed_data:
            tenant = self.cleaned_data.get("tenant")
            if tenant is None:
                number = actions.do_release_number(number, actor=self.actor)
            else:
                number = actions.do_assign_number(number, tenant, actor=self.actor)
        return number


class NumberActionForm(helpers.ActionForm):
    # Typed, not a drop-down: the list page then names no tenant the caller may not see.
    tenant = forms.CharField(
        required=False, label="Tenant (identifier)", help_text="For “Assign to the tenant”."
    )


@admin.register(DidNumber)
class DidNumberAdmin(ActionAdmin):
    list_display = ("number", "tenant", "dealer", "trunk", "description", "assigned_at")
    list_filter = (("tenant", admin.EmptyFieldListFilter),)
    search_fields = ("number", "description")
    list_select_related = ("tenant", "dealer", "trunk")
    ordering = ("number",)
    action_form = NumberActionForm
    actions = ("assign", "release")

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = NumberChangeForm if obj is not None else NumberAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return ("number", "assigned_at") if obj else ()

    def tenants(self, request):
        """The tenants the caller may give numbers to."""
        return tenants_visible_to(request.user)

    def save_model(self, request, obj, form, change):
        request.pbx_added = getattr(form, "added", 1)

    def response_add(self, request, obj, post_url_continue=None):
        added = getattr(request, "pbx_added", 1)
        if added > 1:
            self.message_user(request, f"{added} numbers were added to the pool.", messages.SUCCESS)
        return super().response_add(request, obj, post_url_continue)

    @admin.action(description="Assign to the tenant named below")
    def assign(self, request, queryset):
        slug = (request.POST.get("tenant") or "").strip()
        tenant = self.tenants(request).filter(slug=slug).first() if slug else None
        if tenant is None:
            self.message_user(
                request, "Name one of your tenants by its identifier.", messages.ERROR
            )
            return
        self._each(
            request, queryset, lambda n, actor: actions.do_assign_number(n, tenant, actor=actor)
        )

    @admin.action(description="Release to the pool")
    def release(self, request, queryset):
        self._each(request, queryset, lambda n, actor: actions.do_release_number(n, actor=actor))

    def _each(self, request, queryset, act) -> None:
        actor = Actor.from_request(request)
        for number in queryset.order_by("pk"):
            try:
                act(number, actor)
            except PbxError as exc:
                self.message_user(request, f"{number}: {exc.message}", messages.ERROR)

    def delete_model(self, request, obj):
        self.refusal(request, actions.do_delete_number, obj)

    def delete_queryset(self, request, queryset):
        for number in queryset.order_by("pk"):
            self.delete_model(request, number)
