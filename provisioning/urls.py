"""``/prov/`` on a tenant's host (included from ``pbx/urls.py``)."""

from django.urls import path

from . import views

app_name = "provisioning"
urlpatterns = [
    path("<str:token>/<str:filename>", views.fetch_by_token, name="token_file"),
    path("<str:filename>", views.fetch_plain, name="plain_file"),
]
