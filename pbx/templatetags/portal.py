"""Template filters of the portal's pages."""

from django import template

register = template.Library()


@register.filter
def has_required(form) -> bool:
    """Whether the form shows a required field (then it explains the ``*`` mark)."""
    return any(f.field.required and f.widget_type != "checkbox" for f in form.visible_fields())


#: What an audit entry's action code says, in words: ``{{ entry.action|audit_words }}``.
AUDIT_OBJECTS = {
    "sip_ban": "SIP ban",
    "model_settings": "phone model settings",
    "template": "phone template",
    "device": "phone",
}
AUDIT_VERBS = {
    "create": "created",
    "update": "changed",
    "delete": "deleted",
    "suspend": "suspended",
    "resume": "resumed",
    "invite": "invited",
    "reboot": "rebooted",
    "reprovision": "re-provisioned",
    "hangup": "hung up",
    "clear": "lifted",
    "replay": "replayed",
    "start": "started",
}
AUDIT_PHRASES = {
    "extension.reveal_sip_password": "showed the SIP password of extension",
    "tenant.api_token": "issued an API token for tenant",
}


@register.filter
def audit_words(action: str) -> str:
    """``"tenant.create"`` -> ``"created tenant"``; an unknown code is shown as it is."""
    if action in AUDIT_PHRASES:
        return AUDIT_PHRASES[action]
    thing, _, verb = action.partition(".")
    if verb not in AUDIT_VERBS:
        return action
    return f"{AUDIT_VERBS[verb]} {AUDIT_OBJECTS.get(thing, thing.replace('_', ' '))}"
