"""The web app's softphone: what a signed-in user's browser registers with.

The browser never gets the extension's SIP password: :func:`issue_credential` gives it a
short-lived web credential (``telephony.sip.contract.issue_web_credential``) that the engine
checks without any lookup, and :func:`softphone_ws_url` the engine's WSS address.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.http.request import split_domain_port

from telephony.models import Extension
from telephony.sip.contract import WEB_CREDENTIAL_LABEL, derive_secret, issue_web_credential

__all__ = ["SoftphoneConfig", "issue_credential", "softphone_available", "softphone_ws_url"]

log = logging.getLogger(__name__)


def softphone_ws_url(request) -> str:
    """The SIP WebSocket URL the browser's softphone connects to.

    ``PBX_SIP_WSS_URL`` when set (behind a reverse proxy: its public URL), where ``{host}``
    stands for the host name the browser used, so one setting serves every tenant's host
    (``wss://{host}/sip``). Unset: ``wss://<that host>:<SIP_WSS_PORT>``, the engine's own WSS
    listener, which has the certificate the portal's HTTPS has unless either was replaced.
    Browsers allow only secure WebSockets from a secure page, hence ``wss``.
    """
    host, _ = split_domain_port(request.get_host())
    if settings.PBX_SIP_WSS_URL:
        return settings.PBX_SIP_WSS_URL.replace("{host}", host)
    return f"wss://{host}:{settings.SIP_WSS_PORT}"


def softphone_available(tenant, extension: Extension) -> bool:
    """Whether ``extension`` of ``tenant`` may call from the web app now."""
    return tenant.is_active and extension.enabled and extension.web_softphone


@dataclass(frozen=True, slots=True)
class SoftphoneConfig:
    extension: str
    display_name: str
    uri: str
    authorization_user: str
    password: str
    expires: int
    ws_url: str


def issue_credential(request, tenant, extension: Extension) -> SoftphoneConfig:
    """A web credential for ``extension`` of ``tenant`` (the caller checked it is the user's
    own and its web softphone is on)."""
    secret = derive_secret(settings.SECRET_KEY, WEB_CREDENTIAL_LABEL)
    cred = issue_web_credential(
        secret, tenant.schema_name, extension.number, extension.ha1_md5, now=time.time()
    )
    log.info(
        "web softphone credential for %s@%s until %s",
        extension.number,
        tenant.sip_domain,
        cred.expires,
    )
    return SoftphoneConfig(
        extension=extension.number,
        display_name=extension.display_name,
        uri=f"sip:{extension.number}@{tenant.sip_domain}",
        authorization_user=cred.username,
        password=cred.password,
        expires=cred.expires,
        ws_url=softphone_ws_url(request),
    )
