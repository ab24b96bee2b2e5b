"""Every extension has a mailbox: made with it, gone with it (messages and files too)."""

import pytest

from audio.models import Mailbox


@pytest.mark.django_db
def test_an_extension_is_created_with_its_mailbox(world, in_tenant):
    with in_tenant(world.tenant_a):
        box = Mailbox.objects.select_related("extension").get(extension__number="101")
        assert (box.enabled, box.always, box.busy, box.no_answer) == (True, False, True, True)
        assert (box.max_seconds, box.attach, box.pin) == (120, "wav", "")
