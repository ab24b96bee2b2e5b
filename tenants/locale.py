"""The time zones, languages and currencies a tenant may choose, with names people read: one
source for the settings forms' lists and the actions' checks."""

import datetime
import functools
import zoneinfo


@functools.cache
def _zone_names() -> tuple[str, ...]:
    # The IANA names of places ("Europe/Berlin"), plus UTC; not the legacy aliases ("CET",
    # "US/Eastern", "Etc/GMT+5") that mean something else than they seem.
    names = {
        n
        for n in zoneinfo.available_timezones()
        if "/" in n and not n.startswith(("Etc/", "SystemV/", "US/")) and n[0].isupper()
    }
    return ("UTC", *sorted(names))


def is_time_zone(name: str) -> bool:
    return name in zoneinfo.available_timezones()


@functools.lru_cache(maxsize=4)
def _time_zone_choices(day: datetime.date) -> tuple[tuple[str, str], ...]:
    now = datetime.datetime.combine(day, datetime.time(12), tzinfo=datetime.UTC)
    choices = []
    for name in _zone_names():
        offset = now.astimezone(zoneinfo.ZoneInfo(name)).strftime("%z")
        label = f"UTC{offset[:3]}:{offset[3:]}"
        choices.append((name, f"{name.replace('_', ' ')} ({label})"))
    return tuple(choices)


def time_zone_choices() -> tuple[tuple[str, str], ...]:
    """``(name, "Europe/Berlin (UTC+01:00)")``: today's offset, so summer time shows."""
    return _time_zone_choices(datetime.datetime.now(tz=datetime.UTC).date())


@functools.cache
def language_choices() -> tuple[tuple[str, str], ...]:
    """``(code, "German (Deutsch)")``: the languages Django knows the names of."""
    from django.conf.locale import LANG_INFO

    choices = []
    for code, info in LANG_INFO.items():
        if "name" not in info:  # an alias entry ("zh-cn" -> "zh-hans")
            continue
        name, local = info["name"], info.get("name_local", "")
        choices.append((code, f"{name} ({local})" if local and local != name else name))
    return tuple(sorted(choices, key=lambda c: c[1].casefold()))


def is_language(code: str) -> bool:
    return code in dict(language_choices())


@functools.cache
def currency_choices() -> tuple[tuple[str, str], ...]:
    """``(code, "EUR · Euro")``: the ISO 4217 currencies some country uses today."""
    from babel import Locale
    from babel.numbers import get_territory_currencies

    english = Locale("en")
    codes = set()
    for territory in english.territories:
        if isinstance(territory, str) and territory.isalpha():  # countries, not "150" (Europe)
            codes.update(get_territory_currencies(territory, tender=True))
    return tuple(
        sorted(((c, f"{c} · {english.currencies.get(c, c)}") for c in codes), key=lambda c: c[0])
    )


def is_currency(code: str) -> bool:
    return code in dict(currency_choices())
