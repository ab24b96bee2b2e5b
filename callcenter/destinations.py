"""The destination kind ``queue`` on the Django side (``routing.destinations``): a queue of
the tenant by its number."""

from __future__ import annotations

__all__ = ["queue_check", "queue_choices"]


def queue_check(tenant, target: str) -> str:
    from .models import Queue

    if not Queue.objects.filter(number=target).exists():
        raise ValueError(f"no queue {target or '(empty)'}")
    return target


def queue_choices(tenant) -> list[tuple[str, str]]:
    from .models import Queue

    pairs = Queue.objects.order_by("number").values_list("number", "name")
    return [(n, f"{n} {name}".strip()) for n, name in pairs]
