"""Admin for the dealer tree; every write goes through ``dealers.actions``."""

from django.contrib import admin

from pbx.admin import ActionAdmin, ActionForm
from tenants.fields import DEALER_FIELDS

from . import actions
from .models import Dealer


class DealerForm(ActionForm):
    class Meta:
        model = Dealer
        fields = ("parent", *DEALER_FIELDS)

    def run_action(self):
        data = self.cleaned_data
        if self.instance.pk is None:
            fields = {n: data[n] for n in DEALER_FIELDS if n in data and n != "name"}
            return actions.do_create_dealer(
                name=data["name"], parent=data.get("parent"), actor=self.actor, **fields
            )
        return actions.do_update_dealer(
            self.instance, actor=self.actor, **self.changes(DEALER_FIELDS)
        )


@admin.register(Dealer)
class DealerAdmin(ActionAdmin):
    form = DealerForm
    list_display = ("name", "parent", "path", "max_tenants", "is_active")
    search_fields = ("name",)
    list_select_related = ("parent",)
    ordering = ("path",)

    def get_readonly_fields(self, request, obj=None):
        # Moving a dealer in the tree has no action yet (its subtree's paths would change).
        return ("parent", "path", "created_at") if obj else ("path", "created_at")

    def delete_model(self, request, obj):
        self.refusal(request, actions.do_delete_dealer, obj)

    def delete_queryset(self, request, queryset):
        # Children first, so a parent is empty by the time its turn comes.
        for dealer in sorted(queryset, key=lambda d: -len(d.path)):
            self.delete_model(request, dealer)
