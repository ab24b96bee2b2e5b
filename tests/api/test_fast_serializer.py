"""The fast read path of serializers gives exactly DRF's own output.

``pbx.api.serializers.FastReadMixin`` reads plain fields directly (a third of a list request's
CPU went into DRF's per-field calls); whatever it shows must be what DRF would have shown, for
every field and value kind, including None, choices and the fields left to DRF.
"""

import pytest
from django.utils import timezone
from rest_framework import serializers

pytestmark = pytest.mark.django_db


def test_extension_list_is_identical_to_drf(world, in_tenant):
    from pbx.audit import SYSTEM
    from telephony.actions import do_create_extension
    from telephony.api.serializers import ExtensionSerializer
    from telephony.models import Extension

    with in_tenant(world.tenant_a):
        do_create_extension(
            number="150",
            display_name="Ünïcode Name",
            email="u@acme.test",
            mobile="",
            caller_id_number="+15551230000",
            sip_password="Fast-Read-Pass-42",
            actor=SYSTEM,
        )
        exts = list(Extension.objects.order_by("id"))
        exts[0].allowed_transports = ["udp", "tls"]
        exts[0].outbound_caller_ids = ["+15550001111"]
        assert len(exts) >= 3
        for zone in ("UTC", "America/New_York"):
            with timezone.override(zone):
                many = ExtensionSerializer(exts, many=True).data
                for ext, fast in zip(exts, many, strict=True):
                    drf = serializers.ModelSerializer.to_representation(
                        ExtensionSerializer(ext), ext
                    )
                    assert fast == drf
                    assert [type(v) for v in fast.values()] == [type(v) for v in drf.values()]
                    assert list(fast) == list(drf)  # same keys, same order
            assert many[0]["created_at"].endswith("Z") == (zone == "UTC")
