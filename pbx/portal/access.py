"""Who may open which portal page. The host decides the scope: the provider's host serves the
platform pages (tenants, dealers), a tenant's host serves that tenant's pages."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404

from tenants.access import tenant_permissions
from tenants.choices import Permission, Role

PLATFORM_ROLES = (Role.SYSTEM_ADMIN, Role.DEALER_ADMIN)


def host_tenant(request):
    """The tenant whose host serves this request, or None on the provider's host."""
    tenant = getattr(request, "tenant", None)
    return None if tenant is None or tenant.is_public else tenant


def held_permissions(request) -> frozenset[str]:
    tenant = host_tenant(request)
    if tenant is None or not request.user.is_authenticated:
        return frozenset()
    return tenant_permissions(request.user, tenant) or frozenset()


def platform_admin_required(view):
    """System and dealer admins on the provider's host; anything else is 404 (no hint)."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if host_tenant(request) is not None or request.user.role not in PLATFORM_ROLES:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped


def tenant_permission_required(code: str):
    """A page of the host's tenant that needs permission ``code``."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if host_tenant(request) is None or code not in held_permissions(request):
                raise Http404
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def tenant_member_required(view):
    """Any signed-in user of the host's tenant (its own users, or an admin who switched in)."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        tenant = host_tenant(request)
        if tenant is None or tenant_permissions(request.user, tenant) is None:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped


NAV_TENANT = (
    (Permission.EXTENSIONS_VIEW, "Dashboard", "portal:dashboard", "dashboard"),
    (Permission.EXTENSIONS_VIEW, "Extensions", "portal:extension_list", "extensions"),
    (Permission.EXTENSIONS_VIEW, "Active calls", "portal:active_calls", "calls"),
    (Permission.EXTENSIONS_VIEW, "Call history", "portal:cdr_list", "cdrs"),
    (Permission.TENANT_SETTINGS, "Reports", "portal:reports", "reports"),
    (Permission.EXTENSIONS_VIEW, "Registrations", "portal:registration_list", "registrations"),
    (Permission.DEVICES_VIEW, "Phones", "portal:phone_list", "phones"),
    (Permission.EXTENSIONS_VIEW, "User groups", "portal:user_group_list", "user_groups"),
    (Permission.ROUTING_VIEW, "Numbers", "portal:tenant_numbers", "numbers"),
    (Permission.ROUTING_MANAGE, "Inbound rules", "portal:inbound_list", "inbound"),
    (Permission.ROUTING_MANAGE, "IVR menus", "portal:ivr_list", "ivr"),
    (Permission.ROUTING_MANAGE, "DISA", "portal:disa_list", "disa"),
    (Permission.ROUTING_MANAGE, "Ring groups", "portal:ring_group_list", "ring_groups"),
    (Permission.ROUTING_MANAGE, "Paging groups", "portal:paging_group_list", "paging_groups"),
    (Permission.ROUTING_MANAGE, "Pickup groups", "portal:pickup_group_list", "pickup_groups"),
    (Permission.ROUTING_MANAGE, "Call park", "portal:park_settings", "park"),
    (Permission.ROUTING_MANAGE, "Feature codes", "portal:feature_codes", "features"),
    (Permission.ROUTING_MANAGE, "Outbound rules", "portal:outbound_list", "outbound"),
    (Permission.ROUTING_MANAGE, "Office hours", "portal:office_hours", "hours"),
    (Permission.ROUTING_MANAGE, "Blacklist", "portal:blacklist", "blacklist"),
    (Permission.ROUTING_MANAGE, "Emergency numbers", "portal:emergency", "emergency"),
    (Permission.ROUTING_VIEW, "Trunks", "portal:tenant_trunks", "tenant_trunks"),
    (Permission.ROUTING_MANAGE, "Call routing", "portal:routing_settings", "routing_settings"),
    (Permission.AUDIO_VIEW, "Prompts", "portal:prompt_list", "prompts"),
    (Permission.AUDIO_VIEW, "Music on hold", "portal:music_list", "music"),
    (
        Permission.TENANT_SETTINGS,
        "Call recording",
        "portal:recording_settings",
        "recording_settings",
    ),
    (Permission.USERS_VIEW, "Users", "portal:user_list", "users"),
    (Permission.ROLES_MANAGE, "Roles", "portal:role_list", "roles"),
    (Permission.WEBHOOKS_MANAGE, "Webhooks", "portal:webhook_list", "webhooks"),
    (Permission.AUDIT_VIEW, "Audit log", "portal:audit_list", "audit"),
    (Permission.TENANT_SETTINGS, "Company", "portal:company", "company"),
    (Permission.TENANT_SETTINGS, "TLS certificates", "portal:certificates", "certificates"),
    (Permission.TENANT_SETTINGS, "Branding", "portal:branding", "branding"),
    (Permission.TENANT_SETTINGS, "Billing", "portal:billing", "billing"),
    (Permission.TENANT_SETTINGS, "Call rates", "portal:call_rates", "call_rates"),
)

CONTACT_CENTRE = "Contact centre"
NAV_CONTACT_CENTRE = (
    (Permission.ROUTING_MANAGE, "Queues", "portal:queue_list", "queues"),
    (Permission.TENANT_SETTINGS, "Wallboard", "portal:wallboard", "wallboard"),
    (Permission.TENANT_SETTINGS, "Queue reports", "portal:queue_reports", "queue_reports"),
)


def _contact_centre(request, held) -> list[dict]:
    """The menu's contact centre section: the admin's pages, a supervisor's wallboard, an
    agent's "My queues"."""
    from django.urls import reverse

    from callcenter.models import Queue, QueueAgent

    def item(label: str, name: str, key: str) -> dict:
        return {"label": label, "url": reverse(name), "key": key, "group": CONTACT_CENTRE}

    items = [
        item(label, name, key) for code, label, name, key in NAV_CONTACT_CENTRE if code in held
    ]
    user = request.user
    supervises = Queue.objects.filter(supervisors__user_id=user.pk)
    if Permission.TENANT_SETTINGS not in held and supervises.exists():
        items.append(item("Wallboard", "portal:wallboard", "wallboard"))
    if QueueAgent.objects.filter(extension__user_id=user.pk).exists():
        items.append(item("My queues", "portal:my_queues", "my_queues"))
    return items


def navigation(request) -> list[dict]:
    """The menu for this user on this host: only what they may open."""
    from django.urls import reverse

    user = request.user
    if not user.is_authenticated:
        return []
    tenant = host_tenant(request)
    if tenant is None:
        if user.role not in PLATFORM_ROLES:
            return []
        items = [
            {"label": "Dashboard", "url": reverse("portal:platform_dashboard"), "key": "overview"},
            {"label": "Tenants", "url": reverse("portal:tenant_list"), "key": "tenants"},
            {"label": "Dealers", "url": reverse("portal:dealer_list"), "key": "dealers"},
            {"label": "Trunks", "url": reverse("portal:trunk_list"), "key": "trunks"},
            {"label": "Numbers", "url": reverse("portal:number_list"), "key": "numbers"},
            {"label": "Rate tables", "url": reverse("portal:rate_table_list"), "key": "rates"},
            {"label": "Branding", "url": reverse("portal:branding"), "key": "branding"},
        ]
        if user.role == Role.SYSTEM_ADMIN:
            items.append({"label": "SIP bans", "url": reverse("portal:sip_bans"), "key": "bans"})
        if user.role == Role.DEALER_ADMIN:
            # The dealers' Django admin (dealers.admin_site), scoped to the subtree as here.
            admin = reverse("admin:index", current_app="dealer_admin")
            items.append({"label": "Dealer admin", "url": admin, "key": "dealer_admin"})
        return items
    held = held_permissions(request)
    items = [
        {"label": label, "url": reverse(name), "key": key}
        for code, label, name, key in NAV_TENANT
        if code in held
    ]
    items.extend(_contact_centre(request, held))
    if user.tenant_id == tenant.id:
        items.append({"label": "My extension", "url": reverse("portal:profile"), "key": "me"})
        items.append({"label": "My calls", "url": reverse("portal:my_calls"), "key": "my_calls"})
        items.append(
            {"label": "Voicemail", "url": reverse("portal:my_voicemail"), "key": "my_voicemail"}
        )
    return items


def system_admin_required(view):
    """The system admin on the provider's host only (platform-wide security pages)."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if host_tenant(request) is not None or request.user.role != Role.SYSTEM_ADMIN:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped
