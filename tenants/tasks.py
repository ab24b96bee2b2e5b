"""Background jobs of the tenants app: invitation e-mails."""

from celery import shared_task


@shared_task(name="tenants.send_invite", ignore_result=True)
def send_invite(user_id: int, scheme: str | None = None, port: str | None = None) -> bool:
    """E-mail a set-your-password link to a user who has none yet, in the brand of its tenant
    (or dealer). Idempotent in effect: a user who has set a password meanwhile gets nothing."""
    from django.template.loader import render_to_string

    from branding.effective import brand_for_dealer, brand_for_tenant
    from branding.mail import send_mail

    from .invites import invite_url
    from .models import User

    user = User.objects.select_related("tenant", "dealer").filter(pk=user_id).first()
    if user is None or user.has_usable_password() or not user.is_active:
        return False
    brand = brand_for_tenant(user.tenant) if user.tenant else brand_for_dealer(user.dealer)
    from django.conf import settings

    context = {
        "user": user,
        "brand": brand,
        "company": user.tenant.name if user.tenant else brand.product_name,
        "url": invite_url(user, scheme=scheme, port=port),
        "days": settings.PASSWORD_RESET_TIMEOUT // 86400,
    }
    send_mail(
        f"Your {brand.product_name} account",
        render_to_string("mail/invite.txt", context),
        [user.email],
        tenant=user.tenant,
        dealer=user.dealer,
    )
    return True
