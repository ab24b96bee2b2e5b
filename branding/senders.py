"""Which addresses a brand may send mail from. A tenant or a dealer names its own e-mail
sender, but the mail leaves from the provider's servers: an address of any domain would let a
tenant admin send mail as someone else's bank. So a sender must be in a domain the provider
vouches for: the provider's own (its default sender, its brand's sender, the domains listed in
``PBX_MAIL_SENDER_DOMAINS``), a sender domain of a dealer above the owner, or, for a tenant,
its own host names (its SIP domain and web hosts), each with its subdomains."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q

from .models import Brand


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def sender_domains(*, dealer=None, tenant=None) -> set[str]:
    """The domains a brand of ``tenant`` (or of ``dealer``) may send from."""
    from .effective import _dealer_ids_nearest_first

    domains = {_domain(settings.DEFAULT_FROM_EMAIL)}
    domains.update(d.strip().lower() for d in settings.PBX_MAIL_SENDER_DOMAINS if d.strip())
    above = tenant.dealer if tenant is not None else (dealer.parent if dealer else None)
    ids = _dealer_ids_nearest_first(above) if above is not None else []
    if dealer is not None and dealer.pk in ids:
        ids.remove(dealer.pk)  # a dealer's own sender does not vouch for itself
    above_owner = Q(dealer_id__in=ids) | Q(dealer=None)  # its dealers' brands, the platform's
    senders = Brand.objects.filter(above_owner, tenant=None).exclude(email_from_address="")
    domains.update(_domain(a) for a in senders.values_list("email_from_address", flat=True))
    if tenant is not None:
        domains.update(h.lower() for h in (tenant.sip_domain,) if h)
        domains.update(d.lower() for d in tenant.domains.values_list("domain", flat=True))
    return {d for d in domains if d}


def sender_problem(address: str, *, dealer=None, tenant=None) -> str:
    """Why ``address`` may not be this owner's sender ("" if it may). The platform's own brand
    (no owner) may use any address: the provider runs the mail servers."""
    if not address or (dealer is None and tenant is None):
        return ""
    domain = _domain(address)
    allowed = sender_domains(dealer=dealer, tenant=tenant)
    if any(domain == d or domain.endswith("." + d) for d in allowed):
        return ""
    listed = ", ".join(sorted(allowed))
    return f"mail can only be sent from your own or your provider's domains ({listed})"
