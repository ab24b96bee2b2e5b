"""Helpers shared by the portal's views."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from pbx.audit import Actor
from pbx.portal.access import PLATFORM_ROLES, held_permissions, host_tenant, navigation
from pbx.portal.lists import list_page
from tenants.middleware import MANAGED_TENANT_SESSION_KEY


def page(request, template: str, context: dict | None = None, *, section: str = "", status=200):
    """Render a portal page with the role's navigation and the host's scope."""
    tenant = host_tenant(request)
    ctx = {
        "nav": navigation(request),
        "section": section,
        "tenant": tenant,
        "perms": held_permissions(request),
        "managed": bool(tenant and request.session.get(MANAGED_TENANT_SESSION_KEY) == tenant.id),
        **(context or {}),
    }
    return render(request, template, ctx, status=status)


def actor(request) -> Actor:
    return Actor.from_request(request)


def button_action(request, run, success: str) -> bool:
    """A POST button's action: ``run(actor)``; a refusal becomes an error message, success the
    ``success`` message. Returns whether it went through."""
    from django.contrib import messages

    from pbx.errors import PbxError

    try:
        run(actor(request))
    except PbxError as exc:
        messages.error(request, exc.message)
        return False
    messages.success(request, success)
    return True


def form_action(request, form, run, success: str) -> bool:
    """A valid form's action: ``run(actor)``; a refusal becomes the form's field errors (the
    form's own ``add_action_errors`` when it has one), success the ``success`` message.
    Returns whether it went through."""
    from django.contrib import messages

    from pbx.errors import PbxError
    from pbx.forms import add_action_errors

    try:
        run(actor(request))
    except PbxError as exc:
        own = getattr(form, "add_action_errors", None)
        own(exc) if own is not None else add_action_errors(form, exc)
        return False
    messages.success(request, success)
    return True


def save_action(request, form, obj, create, update, success) -> bool:
    """An edit page's POST (a valid ``form``): ``create(actor, fields)`` a new object when
    there is no ``obj``, else ``update(obj, actor, fields)``, with the form's fields for the
    action; ``success(fields)`` is the message. Returns whether it went through."""
    fields = form.fields_for_action()

    def run(who: Actor) -> None:
        if obj is None:
            create(who, fields)
        else:
            update(obj, who, fields)

    return form_action(request, form, run, success(fields))


def list_view(request, queryset, template: str, *, section: str, search, sorts, default, rows=None):
    """A list page of ``queryset`` (searched, sorted and paged as ``list_page`` does); with
    ``rows(page)``, the page's objects as the template's ``rows``."""
    ctx = list_page(request, queryset, search=search, sorts=sorts, default=default)
    if rows is not None:
        ctx["rows"] = rows(ctx["page"])
    return page(request, template, ctx, section=section)


def edit_page(
    request,
    form,
    obj,
    *,
    create,
    update,
    saved,
    back: str,
    template: str,
    section: str,
    context: dict | None = None,
):
    """An object's edit page (a new one when ``obj`` is None): on a valid POST,
    ``create(actor=, fields=)`` or ``update(obj, actor=, fields=)`` (the actions' own
    signatures), ``saved(fields)`` the message, then back to the ``back`` URL; else the page
    with the form (its field errors), the object and ``context``."""
    if (
        request.method == "POST"
        and form.is_valid()
        and save_action(
            request,
            form,
            obj,
            lambda who, fields: create(actor=who, fields=fields),
            lambda obj, who, fields: update(obj, actor=who, fields=fields),
            saved,
        )
    ):
        return redirect(back)
    ctx = {"form": form, "object": obj, **(context or {})}
    return page(request, template, ctx, section=section)


def delete_page(
    request, obj, *, delete, done: str, back: str, template: str, section: str, context
):
    """An object's delete page: GET shows what deleting it means (``context()``: what the
    template needs besides the object, read only then); POST runs ``delete(obj, actor=)``
    (``done`` the message, a refusal an error) and goes back to the ``back`` URL."""
    if request.method == "POST":
        button_action(request, lambda who: delete(obj, actor=who), done)
        return redirect(back)
    return page(request, template, {"object": obj, **context()}, section=section)


def referenced_delete_page(
    request, model, pk, *, kind: str, title, delete, back: str, section: str, used_by
):
    """The delete page of a number other things send calls to (a ring, paging or pickup
    group, a queue): ``title(obj)``: how the messages name it; ``used_by(obj)``: what still
    sends calls to it, shown before deleting."""
    obj = get_object_or_404(model, pk=pk)
    return delete_page(
        request,
        obj,
        delete=delete,
        done=f"{title(obj)} deleted.",
        back=back,
        template="portal/team/delete.html",
        section=section,
        context=lambda: {"kind": kind, "back": back, "used_by": used_by(obj)},
    )


@login_required
def index(request):
    """Each role lands on its first page."""
    tenant = host_tenant(request)
    user = request.user
    if tenant is None:
        if user.role in PLATFORM_ROLES:
            return redirect("portal:platform_dashboard")
        return page(request, "portal/nothing.html", status=404)
    items = navigation(request)
    if items:
        return redirect(items[0]["url"])
    return page(request, "portal/nothing.html", status=404)


def provider_portal_url(request) -> str:
    """The provider's portal on the same scheme and port as this request."""
    from django.conf import settings

    host = settings.PBX_PUBLIC_HOSTS[0] if settings.PBX_PUBLIC_HOSTS else "localhost"
    return build_url(request, host, reverse("portal:tenant_list"))


def build_url(request, host: str, path: str) -> str:
    port = request.get_port()
    default = "443" if request.is_secure() else "80"
    netloc = host if port in ("", default) else f"{host}:{port}"
    return f"{request.scheme}://{netloc}{path}"
