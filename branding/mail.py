"""E-mail in the sender's brand: ``send_mail(..., tenant=t)`` is Django's ``send_mail`` with the
``From`` of the tenant's effective brand (or a dealer's, or the platform's)."""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import formataddr

from django.conf import settings
from django.core import mail

from .effective import brand_for_dealer, brand_for_tenant


def sender_for(*, tenant=None, dealer=None) -> str:
    """``"Name <address>"`` of the effective brand; the platform's default address if unset."""
    brand = brand_for_tenant(tenant) if tenant is not None else brand_for_dealer(dealer)
    return sender_line(brand.email_from_name, brand.email_from_address, brand.product_name)


def sender_line(name: str, address: str, product_name: str) -> str:
    """The ``From`` of a brand's mail: its sender name (else the product's) and address (else
    the platform's default)."""
    return formataddr((name or product_name, address or settings.DEFAULT_FROM_EMAIL))


def send_mail(
    subject: str,
    message: str,
    recipient_list: Sequence[str],
    *,
    tenant=None,
    dealer=None,
    html_message: str | None = None,
    fail_silently: bool = False,
) -> int:
    """Send one message from the brand's sender; returns the number sent (as Django does)."""
    return mail.send_mail(
        subject,
        message,
        sender_for(tenant=tenant, dealer=dealer),
        list(recipient_list),
        fail_silently=fail_silently,
        html_message=html_message,
    )
