"""Turn an IANA time-zone name into the notations phones understand.

Phones do not carry the tz database: each vendor wants either a fixed UTC offset plus a
daylight-saving switch, a name from its own list, or a POSIX TZ rule. We derive all of
them from the host's tz database so the portal only ever stores the IANA name.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

__all__ = ["TimeZoneInfo", "time_zone_info"]


@dataclass(frozen=True)
class TimeZoneInfo:
    """Everything a template needs to express one IANA zone."""

    name: str
    #: Standard (winter) offset from UTC in minutes, east positive.
    offset_minutes: int
    #: Whether the zone currently observes daylight-saving time.
    dst: bool
    #: POSIX TZ rule, e.g. ``EST5EDT,M3.2.0,M11.1.0`` (used by Grandstream/Htek/Snom M).
    posix: str

    @property
    def offset_seconds(self) -> int:
        """Standard offset in seconds (Polycom ``gmtOffset``, Snom ``utc_offset``)."""
        return self.offset_minutes * 60

    @property
    def offset_hours(self) -> str:
        """Offset as Yealink writes it: ``-5``, ``+1``, ``+5:30``, ``0``."""
        sign = "-" if self.offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(self.offset_minutes), 60)
        if self.offset_minutes == 0:
            return "0"
        return f"{sign}{hours}" + (f":{minutes:02d}" if minutes else "")

    @property
    def gmt_offset(self) -> str:
        """Offset as Cisco SPA writes it: ``GMT-05:00``."""
        sign = "-" if self.offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(self.offset_minutes), 60)
        return f"GMT{sign}{hours:02d}:{minutes:02d}"

    def vendor_name(self, vendor: str) -> str:
        """The zone's name in a vendor's own list, or ``""`` when we have no mapping.

        Templates fall back to the numeric offset when this is empty.
        """
        return _VENDOR_NAMES.get(vendor, {}).get(self.name, "")


def _posix_rule(name: str, offset_minutes: int) -> str:
    # TZif v2+ files end with the POSIX rule between two newlines: the exact rule the
    # tz database itself uses for dates after its table ends.
    for root in zoneinfo.TZPATH:
        path = Path(root) / name
        try:
            tail = path.read_bytes()[-256:]
        except OSError:
            continue
        parts = tail.rstrip(b"\n").rsplit(b"\n", 1)
        if len(parts) == 2 and parts[1]:
            return parts[1].decode("ascii", "replace")
    # Without a tz file (e.g. zones from the tzdata wheel), a fixed-offset rule is the
    # honest fallback: we would rather drop DST than guess its switch dates.
    hours, minutes = divmod(abs(offset_minutes), 60)
    sign = "-" if offset_minutes > 0 else "+"  # POSIX counts west of Greenwich positive.
    label = f"<{'+' if offset_minutes >= 0 else '-'}{hours:02d}{minutes:02d}>"
    return f"{label}{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


@lru_cache(maxsize=512)
def time_zone_info(name: str) -> TimeZoneInfo:
    """Describe IANA zone ``name``; raises :class:`ValueError` for an unknown zone."""
    try:
        zone = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    year = datetime.now(UTC).year
    samples = [datetime(year, month, 1, 12, tzinfo=zone) for month in (1, 7)]
    dst = any((s.dst() or timedelta(0)) != timedelta(0) for s in samples)
    standard = min((s.utcoffset() or timedelta(0)) - (s.dst() or timedelta(0)) for s in samples)
    offset_minutes = int(standard.total_seconds() // 60)
    return TimeZoneInfo(
        name=name,
        offset_minutes=offset_minutes,
        dst=dst,
        posix=_posix_rule(name, offset_minutes),
    )


# Vendor zone names for the zones most tenants use. Vendors publish long lists; a zone
# missing here still works through the numeric offset (and POSIX rule where supported).
_VENDOR_NAMES: dict[str, dict[str, str]] = {
    "yealink": {
        "America/New_York": "United States-Eastern Time",
        "America/Chicago": "United States-Central Time",
        "America/Denver": "United States-Mountain Time",
        "America/Los_Angeles": "United States-Pacific Time",
        "Europe/London": "United Kingdom(London)",
        "Europe/Berlin": "Germany(Berlin)",
        "Europe/Paris": "France(Paris)",
        "Europe/Madrid": "Spain(Madrid)",
        "Europe/Amsterdam": "Netherlands(Amsterdam)",
        "Asia/Shanghai": "China(Beijing)",
        "Australia/Sydney": "Australia(Sydney,Melbourne,Canberra)",
    },
    "snom": {
        "UTC": "GMT-0",
        "America/New_York": "USA-5",
        "America/Chicago": "USA-6",
        "America/Denver": "USA-7",
        "America/Los_Angeles": "USA-8",
        "Europe/London": "GBR-0",
        "Europe/Berlin": "GER+1",
        "Europe/Paris": "FRA+1",
        "Europe/Madrid": "ESP+1",
        "Europe/Amsterdam": "NLD+1",
        "Asia/Shanghai": "CHN+8",
        "Australia/Sydney": "AUS+10",
    },
    "cisco": {
        "UTC": "Greenwich Standard Time",
        "America/New_York": "Eastern Standard/Daylight Time",
        "America/Chicago": "Central Standard/Daylight Time",
        "America/Denver": "Mountain Standard/Daylight Time",
        "America/Los_Angeles": "Pacific Standard/Daylight Time",
        "Europe/London": "GMT Standard/Daylight Time",
        "Europe/Berlin": "W. Europe Standard/Daylight Time",
        "Europe/Paris": "Romance Standard/Daylight Time",
        "Europe/Madrid": "Romance Standard/Daylight Time",
        "Europe/Amsterdam": "W. Europe Standard/Daylight Time",
        "Asia/Shanghai": "China Standard/Daylight Time",
        "Australia/Sydney": "AUS Eastern Standard/Daylight Time",
    },
}
