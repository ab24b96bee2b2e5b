"""The portal's charts drawn on the server as inline SVG: the dashboard's (figures from the
stats API, :func:`telephony.stats.call_stats`) and the Reports page's (figures from
:func:`billing.reports.report`). The geometry is worked out here, one value axis for every
column chart, and the templates only print it (no chart library, nothing to download, readable
without JS)."""

from __future__ import annotations

import math
from datetime import datetime

HOURS_W, HOURS_H = 720, 200
DAYS_W, DAYS_H = 720, 180
PAD_B, PAD_T = 22, 8
DONUT_R = 54
BAR_W = 420  # the longest horizontal bar
ROW_H = 24
#: Groups shown in a report's bar chart (the busiest); the table beside it has them all.
MAX_BARS = 20


def _nice_max(value: int) -> int:
    """A round axis top at or above ``value`` (1, 2, 5 times a power of ten)."""
    if value <= 4:
        return max(value, 1)
    power = 10 ** int(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


class _Columns:
    """A column chart's frame: ``n`` columns side by side left of ``left``'s value axis, which
    goes from 0 to a round top at or above ``peak``; a label under every few columns (at most
    ``labels``)."""

    def __init__(self, n: int, peak: int, *, width: int, height: int, left: int, labels: int):
        self.width, self.height, self.left = width, height, left
        self.top = _nice_max(peak)
        self.plot_h = height - PAD_B - PAD_T
        self.base = PAD_T + self.plot_h
        n = max(n, 1)
        self.slot = (width - left - 4) / n
        self.bar_w = max(self.slot * 0.78, 1.0)
        self.label_every = max(1, math.ceil(n / labels))

    def h(self, count: int) -> float:
        """A column's height for ``count``."""
        return self.plot_h * count / self.top

    def column(self, i: int, label: str) -> dict:
        """The ``i``-th column's place and label (shown only under every few columns)."""
        return {
            "x": round(self.left + i * self.slot + (self.slot - self.bar_w) / 2, 2),
            "w": round(self.bar_w, 2),
            "label": label if i % self.label_every == 0 else "",
            "label_x": round(self.left + i * self.slot + self.slot / 2, 2),
        }

    def chart(self, bars: list[dict], **extra) -> dict:
        ticks = [
            {"value": v, "y": round(self.base - self.h(v), 2)}
            for v in sorted({0, self.top // 2, self.top})
        ]
        return {
            "width": self.width,
            "height": self.height,
            "left": self.left,
            "right": self.width - 4,
            "baseline": self.base,
            "label_y": self.height - 6,
            "bars": bars,
            "ticks": ticks,
            **extra,
        }


def hours_chart(per_hour: list[dict]) -> dict:
    """Stacked bars per hour: answered, missed, other (failed, in progress)."""
    peak = max((h["total"] for h in per_hour), default=0)
    frame = _Columns(len(per_hour), peak, width=HOURS_W, height=HOURS_H, left=34, labels=12)
    bars = []
    for i, hour in enumerate(per_hour):
        other = max(hour["total"] - hour["answered"] - hour["missed"], 0)
        y: float = frame.base
        segments = []
        parts = (("answered", hour["answered"]), ("missed", hour["missed"]), ("other", other))
        for kind, count in parts:
            if count:
                h = frame.h(count)
                y -= h
                segments.append({"kind": kind, "y": round(y, 2), "h": round(h, 2)})
        start = datetime.fromisoformat(hour["hour"])
        bars.append(
            {
                **frame.column(i, f"{start:%H}"),
                "segments": segments,
                "title": (
                    f"{start:%a %H}:00 — {hour['total']} calls, {hour['answered']} answered, "
                    f"{hour['missed']} missed"
                ),
            }
        )
    return frame.chart(bars)


def days_chart(days: list[dict]) -> dict:
    """A report's vertical bars of calls per day (answered at the bottom, the rest above)."""
    peak = max((d["calls"] for d in days), default=0)
    frame = _Columns(len(days), peak, width=DAYS_W, height=DAYS_H, left=40, labels=10)
    bars = []
    for i, day in enumerate(days):
        answered_h = frame.h(day["answered"])
        other_h = frame.h(day["calls"] - day["answered"])
        bars.append(
            {
                **frame.column(i, day["key"][5:]),
                "answered_y": round(frame.base - answered_h, 2),
                "answered_h": round(answered_h, 2),
                "other_y": round(frame.base - answered_h - other_h, 2),
                "other_h": round(other_h, 2),
                "title": f"{day['label']}: {day['calls']} call{'' if day['calls'] == 1 else 's'}, "
                f"{day['answered']} answered",
            }
        )
    return frame.chart(bars, total=sum(d["calls"] for d in days))


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
    width = BAR_W
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


def bars_chart(rows: list[dict], figure: str, *, unit: str = "") -> dict:
    """A report's horizontal bars of ``figure`` per group, the biggest ``MAX_BARS`` first."""
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
