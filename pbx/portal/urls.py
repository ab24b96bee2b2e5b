from django.urls import path

from .views import common, imports, platform, tenant
from .views import provisioning as phones

app_name = "portal"
urlpatterns = [
    path("", common.index, name="index"),
    # the provider's host
    path("tenants/", platform.tenant_list, name="tenant_list"),
    path("tenants/add/", platform.tenant_add, name="tenant_add"),
    path("tenants/<int:pk>/", platform.tenant_edit, name="tenant_edit"),
    path("tenants/<int:pk>/status/", platform.tenant_status, name="tenant_status"),
    path("tenants/<int:pk>/delete/", platform.tenant_delete, name="tenant_delete"),
    path("tenants/<int:pk>/manage/", platform.tenant_manage, name="tenant_manage"),
    path("dealers/", platform.dealer_list, name="dealer_list"),
    path("dealers/add/", platform.dealer_add, name="dealer_add"),
    path("dealers/<int:pk>/", platform.dealer_edit, name="dealer_edit"),
    path("dealers/<int:pk>/delete/", platform.dealer_delete, name="dealer_delete"),
    # a tenant's host
    path("switch/<str:token>/", tenant.switch_in, name="switch"),
    path("switch-back/", tenant.switch_back, name="switch_back"),
    path("extensions/", tenant.extension_list, name="extension_list"),
    path("extensions/add/", tenant.extension_add, name="extension_add"),
    path("extensions/<int:pk>/", tenant.extension_edit, name="extension_edit"),
    path("extensions/<int:pk>/delete/", tenant.extension_delete, name="extension_delete"),
    path("extensions/import/", imports.import_upload, name="import_upload"),
    path("imports/<uuid:pk>/", imports.import_detail, name="import_detail"),
    path("imports/<uuid:pk>/start/", imports.import_start, name="import_start"),
    path("imports/<uuid:pk>/progress/", imports.import_progress, name="import_progress"),
    path("phones/", phones.phone_list, name="phone_list"),
    path("phones/add/", phones.phone_add, name="phone_add"),
    path("phones/import/", phones.phone_import, name="phone_import"),
    path("phones/templates/", phones.template_list, name="phone_template_list"),
    path(
        "phones/templates/<str:model_id>/<int:index>/",
        phones.template_edit,
        name="phone_template_edit",
    ),
    path("phones/<int:pk>/", phones.phone_edit, name="phone_edit"),
    path("phones/<int:pk>/delete/", phones.phone_delete, name="phone_delete"),
    path("phones/<int:pk>/<str:what>/", phones.phone_signal, name="phone_signal"),
    path("users/", tenant.user_list, name="user_list"),
    path("users/add/", tenant.user_add, name="user_add"),
    path("users/<int:pk>/", tenant.user_edit, name="user_edit"),
    path("users/<int:pk>/delete/", tenant.user_delete, name="user_delete"),
    path("roles/", tenant.role_list, name="role_list"),
    path("roles/add/", tenant.role_edit, name="role_add"),
    path("roles/<int:pk>/", tenant.role_edit, name="role_edit"),
    path("roles/<int:pk>/delete/", tenant.role_delete, name="role_delete"),
    path("audit/", tenant.audit_list, name="audit_list"),
    path("me/", tenant.profile, name="profile"),
]
