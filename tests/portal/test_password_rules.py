"""Password rules are shown where a password is typed, before a first failed attempt: the
tenant's own policy (length, character classes), for web and SIP passwords."""

from tenants.models import Tenant


def test_password_fields_show_the_tenants_rules(portal, world):
    Tenant.objects.filter(pk=world.tenant_a.pk).update(
        pw_min_length=14, pw_require_symbol=True, sip_pw_min_length=18
    )
    admin = portal(world.a_admin, world.tenant_a)
    for path in ("/portal/users/add/", f"/portal/users/{world.a_user.pk}/"):
        html = admin.get(path).content.decode()
        assert "At least 14 characters" in html, path
        assert "a symbol" in html, path
    html = admin.get("/portal/extensions/add/").content.decode()
    assert "At least 18 characters" in html  # the SIP password's rule
    assert "At least 14 characters" in html  # the web password's
    html = portal(world.a_user, world.tenant_a).get("/portal/me/").content.decode()
    assert "At least 14 characters" in html
