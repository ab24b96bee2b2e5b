from django.contrib import admin
from django.urls import include, path

from dealers.admin_site import site as dealer_admin_site
from pbx import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("api/v1/", include("pbx.api.urls")),
    path("admin/", admin.site.urls),
    # The dealers' admin: their subtree only, on the provider's host (dealers.admin_site).
    path("dealer-admin/", dealer_admin_site.urls),
    path("accounts/", include("allauth.urls")),
    path("portal/", include("pbx.portal.urls")),
    path("prov/", include("provisioning.urls")),
    # PortSIP's path for the same files: phones and DHCP scopes set up for it keep working.
    path("provision/", include(("provisioning.urls", "provisioning"), namespace="provision")),
]

# Under /api/ Django's own answers (no URL matched, a crash outside DRF) carry the error body;
# elsewhere 404 and 403 are Django's views with our templates (the portal's look and the host's
# brand), and 400 (also: unknown host) and 500 render without the database.
handler400 = "pbx.api.errors.bad_request"
handler403 = "pbx.api.errors.permission_denied"
handler404 = "pbx.api.errors.page_not_found"
handler500 = "pbx.api.errors.server_error"
