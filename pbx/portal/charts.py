"""Dashboard charts drawn on the server as inline SVG: the figures are the stats API's
(:func:`telephony.stats.call_stats`), the geometry is worked out here, and the
templates only print it (no chart library, nothing to download, readable without JS)."""

from __future__ import annotations

import math
from datetime import datetime

HOURS_W, HOURS_H = 720, 200
PAD_L, PAD_B, PAD_T = 34, 22, 8
DONUT_R = 54


def _nice_max(value: int) -> int:
    """A round axis top at or above ``value`` (1, 2, 5 times a power of ten)."""
    if value <= 4:
        return max(value, 1)
    power = 10 ** int(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def hours_chart(per_hour: list[dict]) -> dict:
    """Stacked bars per hour: answered, missed, other (failed, in progress)."""
    top = _nice_max(max((h["total"] for h in per_hour), default=0))
    plot_w, plot_h = HOURS_W - PAD_L - 4, HOURS_H - PAD_B - PAD_T
    n = max(len(per_hour), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.78, 1.0)
    label_every = max(1, math.ceil(n / 12))
    bars = []
    for i, hour in enumerate(per_hour):
        x = PAD_L + i * slot + (slot - bar_w) / 2
        other = max(hour["total"] - hour["answered"] - hour["missed"], 0)
        y = PAD_T + plot_h
        segments = []
        parts = (("answered", hour["answered"]), ("missed", hour["missed"]), ("other", other))
        for kind, count in parts:
            if count:
                h = plot_h * count / top
                y -= h
                segments.append({"kind": kind, "y": round(y, 2), "h": round(h, 2)})
        start = datetime.fromisoformat(hour["hour"])
        bars.append(
            {
                "x": round(x, 2),
                "w": round(bar_w, 2),
                "segments": segments,
                "title": (
                    f"{start:%a %H}:00 — {hour['total']} calls, {hour['answered']} answered, "
                    f"{hour['missed']} missed"
                ),
                "label": f"{start:%H}" if i % label_every == 0 else "",
                "label_x": round(PAD_L + i * slot + slot / 2, 2),
            }
        )
    ticks = [
        {"value": v, "y": round(PAD_T + plot_h - plot_h * v / top, 2)}
        for v in sorted({0, top // 2, top})
    ]
    return {
        "width": HOURS_W,
        "height": HOURS_H,
        "left": PAD_L,
        "right": HOURS_W - 4,
        "baseline": PAD_T + plot_h,
        "label_y": HOURS_H - 6,
        "bars": bars,
        "ticks": ticks,
    }


def outcome_chart(totals: dict) -> dict:
    """A donut of answered, missed and failed calls (stroke-dasharray arcs on one circle)."""
    parts = [
        ("answered", "Answered", totals.get("answered", 0)),
        ("missed", "Missed", totals.get("missed", 0)),
        ("other", "Failed", totals.get("failed", 0)),
    ]
    total = sum(count for _, _, count in parts)
    circumference = 2 * math.pi * DONUT_R
    offset = 0.0
    arcs = []
    for kind, label, count in parts:
        length = circumference * count / total if total else 0.0
        arcs.append(
            {
                "kind": kind,
                "label": label,
                "count": count,
                "dash": f"{length:.2f} {circumference - length:.2f}",
                "offset": f"{-offset:.2f}",
                "share": round(100 * count / total) if total else 0,
            }
        )
        offset += length
    return {"r": DONUT_R, "total": total, "arcs": arcs, "answered_share": arcs[0]["share"]}


def busiest_chart(rows: list[dict]) -> dict:
    """Horizontal bars per extension: calls made and received."""
    top = max((r["calls"] for r in rows), default=0) or 1
    width = 420
    items = []
    for i, row in enumerate(rows):
        made_w = width * row["made"] / top
        items.append(
            {
                **row,
                "y": i * 26,
                "made_w": round(made_w, 2),
                "received_x": round(made_w, 2),
                "received_w": round(width * row["received"] / top, 2),
            }
        )
    return {"width": width, "height": max(len(items) * 26, 26), "items": items}
