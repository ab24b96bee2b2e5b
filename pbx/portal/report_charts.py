"""The Reports page's charts, drawn on the server as inline SVG: horizontal bars of a figure
per group (calls, cost) and vertical bars of calls per day. The figures are the report's
(:func:`billing.reports.report`); here only the geometry, the templates print it."""

from __future__ import annotations

import math

BAR_W = 420  # the longest horizontal bar
ROW_H = 24
#: Groups shown in a bar chart (the busiest); the table beside it has them all.
MAX_BARS = 20
DAYS_W, DAYS_H = 720, 180
PAD_L, PAD_B, PAD_T = 40, 22, 8


def _nice_max(value: float) -> float:
    """A round axis top at or above ``value`` (1, 2, 5 times a power of ten)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def bars_chart(rows: list[dict], figure: str, *, unit: str = "") -> dict:
    """Horizontal bars of ``figure`` per group, the biggest ``MAX_BARS`` groups first."""
    shown = sorted(rows, key=lambda r: (-r[figure], r["key"]))[:MAX_BARS]
    shown = [r for r in shown if r[figure]]
    top = max((float(r[figure]) for r in shown), default=0.0) or 1.0
    items = []
    for i, row in enumerate(shown):
        value = row[figure]
        items.append(
            {
                "label": row["label"],
                "value": f"{value} {unit}".strip(),
                "y": i * ROW_H,
                "w": round(BAR_W * float(value) / top, 2),
            }
        )
    return {
        "width": BAR_W,
        "height": max(len(items) * ROW_H, ROW_H),
        "items": items,
        "hidden": max(len([r for r in rows if r[figure]]) - len(items), 0),
    }


def days_chart(days: list[dict]) -> dict:
    """Vertical bars of calls per day (answered at the bottom, the rest above)."""
    top = int(_nice_max(max((d["calls"] for d in days), default=0)))
    plot_w, plot_h = DAYS_W - PAD_L - 4, DAYS_H - PAD_B - PAD_T
    n = max(len(days), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.78, 1.0)
    label_every = max(1, math.ceil(n / 10))
    bars = []
    for i, day in enumerate(days):
        base = PAD_T + plot_h
        answered_h = plot_h * day["answered"] / top
        other_h = plot_h * (day["calls"] - day["answered"]) / top
        bars.append(
            {
                "x": round(PAD_L + i * slot + (slot - bar_w) / 2, 2),
                "w": round(bar_w, 2),
                "answered_y": round(base - answered_h, 2),
                "answered_h": round(answered_h, 2),
                "other_y": round(base - answered_h - other_h, 2),
                "other_h": round(other_h, 2),
                "title": f"{day['label']}: {day['calls']} call{'' if day['calls'] == 1 else 's'}, "
                f"{day['answered']} answered",
                "label": day["key"][5:] if i % label_every == 0 else "",
                "label_x": round(PAD_L + i * slot + slot / 2, 2),
            }
        )
    ticks = [
        {"value": v, "y": round(PAD_T + plot_h - plot_h * v / top, 2)}
        for v in sorted({0, top // 2, top})
    ]
    return {
        "width": DAYS_W,
        "height": DAYS_H,
        "left": PAD_L,
        "right": DAYS_W - 4,
        "label_y": DAYS_H - 6,
        "bars": bars,
        "ticks": ticks,
        "total": sum(d["calls"] for d in days),
    }
