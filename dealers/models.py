"""The reseller tree: dealers and sub-dealers, each bounded by what its parent was given."""

from django.db import models
from django.utils import timezone

from tenants.models import Capabilities


class Dealer(Capabilities):
    """A reseller. ``path`` is the materialised chain of ids (``/1/4/9/``) so that a subtree is
    one indexed ``LIKE`` query."""

    name = models.CharField(max_length=120)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(max_length=255, db_index=True, editable=False, default="")
    max_tenants = models.PositiveIntegerField(default=100)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Phone provisioning defaults for this dealer's tenants (layer "dealer"; sub-dealers override).
    provisioning_settings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def depth(self) -> int:
        return self.path.strip("/").count("/") + 1 if self.path else 0
