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
]

handler400 = "pbx.api.errors.bad_request"
handler403 = "pbx.api.errors.permission_denied"
handler404 = "pbx.api.errors.page_not_found"
handler500 = "pbx.api.errors.server_error"
