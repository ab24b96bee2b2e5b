from django.db import models


class TenantStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    DELETED = "deleted", "Deleted"


class BillingMode(models.TextChoices):
    NONE = "none", "No billing"
    PREPAID = "prepaid", "Prepaid"
    POSTPAID = "postpaid", "Postpaid"


class Role(models.TextChoices):
    SYSTEM_ADMIN = "system_admin", "System admin"
    DEALER_ADMIN = "dealer_admin", "Dealer admin"
    TENANT_ADMIN = "tenant_admin", "Tenant admin"
    TENANT_USER = "tenant_user", "Tenant user"


class Permission(models.TextChoices):
    """Permission codes a tenant's custom role may hold (PortSIP-style role sets)."""

    EXTENSIONS_VIEW = "extensions.view", "View extensions"
    EXTENSIONS_MANAGE = "extensions.manage", "Add, change and delete extensions"
    USERS_VIEW = "users.view", "View users"
    USERS_MANAGE = "users.manage", "Add, change and delete users"
    ROLES_MANAGE = "roles.manage", "Manage roles"
    AUDIT_VIEW = "audit.view", "Read the audit log"
    TENANT_SETTINGS = "tenant.settings", "Change tenant settings"
    DEVICES_VIEW = "devices.view", "View phones and their provisioning"
    DEVICES_MANAGE = "devices.manage", "Add, change, re-provision and reboot phones"
    WEBHOOKS_MANAGE = "webhooks.manage", "Manage webhooks and read the event outbox"
    ROUTING_VIEW = "routing.view", "View numbers, trunks and call routing"
    ROUTING_MANAGE = "routing.manage", "Change call routing, office hours and own trunks"
    AUDIO_VIEW = "audio.view", "View prompts, music on hold, mailboxes and voicemail"
    AUDIO_MANAGE = "audio.manage", "Change prompts, music on hold, mailboxes and voicemail"


TENANT_ADMIN_PERMISSIONS = frozenset(Permission.values)
TENANT_USER_PERMISSIONS: frozenset[str] = frozenset()


class SrtpMode(models.TextChoices):
    """Media encryption towards phones (``telephony.sip.contract.SrtpMode``): SDES-SRTP, for
    phones registered over TLS. An extension's "" follows the tenant's."""

    INHERIT = "", "As the tenant's"
    OFF = "off", "Off (plain RTP)"
    OPTIONAL = "optional", "Optional (SRTP when the phone accepts it)"
    REQUIRED = "required", "Required (SRTP only)"


class RecordingPolicy(models.TextChoices):
    """Whether calls are recorded (``telephony.sip.contract.RecordingPolicy``); an extension's
    or a trunk's "" follows the tenant's policy."""

    INHERIT = "", "As the tenant's policy"
    NEVER = "never", "Never"
    ON_DEMAND = "on_demand", "On demand (*44 or the API starts it)"
    ALWAYS = "always", "Always"
