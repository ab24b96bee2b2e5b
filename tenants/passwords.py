"""Per-tenant password policy for web and SIP passwords, and strong SIP password generation."""

import secrets
import string

from django.contrib.auth.password_validation import CommonPasswordValidator

from pbx.errors import WeakPassword

_SYMBOLS = "!#$%*+-=?@^_"
_common = CommonPasswordValidator()


def policy_problems(policy, password: str, *, kind: str = "web", identifiers=()) -> list[str]:
    """Every rule of ``policy`` (a Tenant, or None for the platform default) that fails."""
    problems = []
    if kind == "sip":
        min_length = getattr(policy, "sip_pw_min_length", 12)
    else:
        min_length = getattr(policy, "pw_min_length", 10)
    if len(password) < min_length:
        problems.append(f"must be at least {min_length} characters long")
    if getattr(policy, "pw_require_upper", True) and not any(c.isupper() for c in password):
        problems.append("must contain an upper-case letter")
    if getattr(policy, "pw_require_lower", True) and not any(c.islower() for c in password):
        problems.append("must contain a lower-case letter")
    if getattr(policy, "pw_require_digit", True) and not any(c.isdigit() for c in password):
        problems.append("must contain a digit")
    if getattr(policy, "pw_require_symbol", False) and not any(not c.isalnum() for c in password):
        problems.append("must contain a symbol")
    if password.lower() in _common.passwords:
        problems.append("is too common")
    lowered = password.lower()
    for ident in identifiers:
        if ident and len(ident) >= 3 and ident.lower() in lowered:
            problems.append("must not contain the extension number, name or e-mail")
            break
    from pbx.text import has_control_characters

    if has_control_characters(password):
        problems.append("must not contain control characters")
    return problems


def policy_hint(policy, *, kind: str = "web") -> str:
    """The rules of :func:`policy_problems` in a sentence, to show before anyone fails them."""
    if kind == "sip":
        length = getattr(policy, "sip_pw_min_length", 12)
    else:
        length = getattr(policy, "pw_min_length", 10)
    needs = [
        label
        for flag, default, label in (
            ("pw_require_upper", True, "an upper-case letter"),
            ("pw_require_lower", True, "a lower-case letter"),
            ("pw_require_digit", True, "a digit"),
            ("pw_require_symbol", False, "a symbol"),
        )
        if getattr(policy, flag, default)
    ]
    hint = f"At least {length} characters"
    if needs:
        hint += ", with " + (", ".join(needs[:-1]) + " and " if len(needs) > 1 else "") + needs[-1]
    return hint + "; not a common password, nor one containing your name or number."


def check_password(policy, password: str, *, field: str, kind: str = "web", identifiers=()):
    problems = policy_problems(policy, password, kind=kind, identifiers=identifiers)
    if problems:
        raise WeakPassword(
            f"The {field.replace('_', ' ')} is too weak: " + "; ".join(problems) + ".",
            fields={field: problems},
        )


def generate_sip_password(policy=None) -> str:
    """A random password that satisfies ``policy``: letters, digits and a safe symbol set."""
    length = max(16, getattr(policy, "sip_pw_min_length", 12))
    alphabet = string.ascii_letters + string.digits + _SYMBOLS
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if not policy_problems(policy, candidate, kind="sip"):
            return candidate
