"""Engine events written to a real Redis stream exactly as the engine's EventSink writes them
(every value text, ``ts`` in epoch seconds), and the CDR the drain files from them."""

import time


def emit(r, stream, type_, **fields):
    entry = {"type": type_, "ts": f"{fields.pop('ts', time.time()):.3f}"}
    entry.update({k: "" if v is None else str(v) for k, v in fields.items()})
    return r.xadd(stream, entry)


def feature_set(r, stream, schema, extension, feature, number=""):
    """The phone's ``feature.set`` request: ``feature`` of ``extension`` set to ``number``."""
    return emit(r, stream, "feature.set", schema=schema, extension=extension, feature=feature,
                number=number)  # fmt: skip


def read_cdr(in_tenant, tenant, call_id):
    """``(cdr, segments)`` of ``call_id`` in ``tenant``; ``(None, [])`` while there is none."""
    from telephony.models import Cdr

    with in_tenant(tenant):
        cdr = Cdr.objects.filter(call_id=call_id).first()
        if cdr is None:
            return None, []
        return cdr, list(cdr.segments.order_by("seq"))
