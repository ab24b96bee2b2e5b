from django.contrib import admin
from django.urls import include, path

from pbx import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("api/v1/", include("pbx.api.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("portal/", include("pbx.portal.urls")),
    path("prov/", include("provisioning.urls")),
    # PortSIP's path for the same files: phones and DHCP scopes set up for it keep working.
    path("provision/", include(("provisioning.urls", "provisioning"), namespace="provision")),
]

# 404 and 403 are Django's views with our templates (the portal's look and the host's brand);
# 400 (also: unknown host) and 500 render without the database.
handler500 = "pbx.views.server_error"
