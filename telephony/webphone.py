"""The browser softphone: what the portal hands a browser so it can register and call."""

from django.conf import settings
from django.http.request import split_domain_port


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
