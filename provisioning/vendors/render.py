"""Rendering shipped and custom templates inside a Jinja2 sandbox."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .context import BlfKey, Branding, Line, ProvisioningContext
from .formats import FileFormat, check_output
from .mac import normalize_mac
from .registry import FAMILIES, FileSpec, PhoneModel, ProvisioningError, get_model
from .timezones import time_zone_info

__all__ = [
    "MAX_OUTPUT_BYTES",
    "RenderedFile",
    "RequestMatch",
    "files_for",
    "match_request",
    "match_request_all",
    "render",
    "render_source",
    "sample_context",
    "spec_for",
    "template_source",
    "validate_template",
]

#: A custom template producing more than this is refused (a phone config is a few KiB).
MAX_OUTPUT_BYTES = 1024 * 1024
TEMPLATE_DIR = Path(__file__).parent / "templates"

# Every character that could end a line for a phone's parser or for str.splitlines():
# a display name carrying one could otherwise add its own "key = value" line.
_CONTROL = {code: " " for code in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]}


def _finalize(value: Any) -> Any:
    # Applied to every {{ expression }} before escaping; None prints as empty because an
    # unset optional field must not reach a phone as the word "None".
    if value is None:
        return ""
    # str.translate keeps Markup as Markup, so |safe output stays unescaped but cleaned.
    text = value if isinstance(value, str) else str(value)
    return text.translate(_CONTROL)


def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=autoescape,
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


_ENVIRONMENTS = {True: _environment(True), False: _environment(False)}


def _env_for(spec: FileSpec) -> ImmutableSandboxedEnvironment:
    return _ENVIRONMENTS[spec.format is FileFormat.XML]


@dataclass(frozen=True)
class RenderedFile:
    """A rendered provisioning file, ready to send over HTTP or TFTP."""

    content: bytes
    content_type: str
    filename: str = ""


class RequestMatch(NamedTuple):
    """Which family a requested file name belongs to, and the MAC in it (``None`` for a
    file shared by all devices such as ``y000000000000.cfg``)."""

    family: str
    mac: str | None


def _basename(path: str) -> str:
    path = path.split("?", 1)[0].split("#", 1)[0]
    return re.split(r"[/\\]", path)[-1]


def _match_spec(spec: FileSpec, name: str) -> tuple[bool, str | None]:
    found = spec.regex.fullmatch(name)
    if not found:
        return False, None
    if not spec.per_device:
        return True, None
    try:
        return True, normalize_mac(found["mac"])
    except ValueError:
        return False, None  # e.g. "000000000000.cfg": looks like a MAC, is not a device


def match_request_all(path: str) -> list[RequestMatch]:
    """Every (family, MAC) a requested file name could belong to, registry order."""
    name = _basename(path)
    matches: list[RequestMatch] = []
    for family in FAMILIES.values():
        for spec in family.files:
            ok, mac = _match_spec(spec, name)
            if ok:
                matches.append(RequestMatch(family.id, mac))
                break
    return matches


def match_request(path: str) -> RequestMatch | None:
    """The most likely (family, MAC) for a requested path, or ``None``.

    ``<mac>.cfg`` is requested by Yealink, Fanvil and Poly alike; the vendor's OUI breaks
    the tie. The Django side should still prefer the model stored for the MAC, and only
    fall back to this guess for unknown devices.
    """
    matches = match_request_all(path)
    if not matches:
        return None
    for match in matches:
        if match.mac and match.mac[:6] in FAMILIES[match.family].ouis:
            return match
    return matches[0]


def files_for(model_id: str, mac: str) -> list[str]:
    """The file names device ``mac`` of ``model_id`` fetches, per-device file first."""
    digits = normalize_mac(mac)
    return [spec.filename(digits) for spec in get_model(model_id).files]


def _spec_for(model: PhoneModel, filename: str, mac: str) -> FileSpec:
    name = _basename(filename)
    for spec in model.files:
        ok, found_mac = _match_spec(spec, name)
        if ok:
            if spec.per_device and found_mac != mac:
                raise ProvisioningError(f"{name!r} is not a file of device {mac}")
            return spec
    raise ProvisioningError(f"{model.name} does not request a file named {name!r}")


def spec_for(model_id: str, filename: str, mac: str) -> FileSpec:
    """The spec of ``filename`` among model ``model_id``'s files for device ``mac``.

    Raises :class:`ProvisioningError` when the model does not fetch such a file, or when the
    name carries another device's MAC.
    """
    return _spec_for(get_model(model_id), filename, normalize_mac(mac))


def _check_fits(model: PhoneModel, ctx: ProvisioningContext) -> None:
    if ctx.model_id != model.id:
        raise ProvisioningError(f"context is for {ctx.model_id!r}, not {model.id!r}")
    if len(ctx.lines) > model.max_accounts:
        raise ProvisioningError(
            f"{model.name} has {model.max_accounts} accounts, {len(ctx.lines)} lines given"
        )
    for line in ctx.lines:
        if line.index > model.max_accounts:
            raise ProvisioningError(f"{model.name} has no account {line.index}")
    if ctx.blf_keys:
        last = len(ctx.blf_keys) + (_first_blf_key(model, ctx) - 1)
        if len(ctx.blf_keys) > model.max_blf_keys or last > model.line_keys:
            raise ProvisioningError(
                f"{model.name} cannot take {len(ctx.blf_keys)} BLF keys beside "
                f"{len(ctx.lines)} lines"
            )
    if ctx.handsets and not model.dect:
        raise ProvisioningError(f"{model.name} is not a DECT base; it has no handsets")
    for handset, _line in ctx.handsets:
        if handset > model.max_handsets:
            raise ProvisioningError(f"{model.name} takes at most {model.max_handsets} handsets")


def _first_blf_key(model: PhoneModel, ctx: ProvisioningContext) -> int:
    if not model.family.blf_after_lines:
        return 1
    return max((line.index for line in ctx.lines), default=0) + 1


#: The feature codes that keys and pickup settings use (``contract.Feature`` names).
KEY_FEATURES = ("pickup", "pickup_group", "park", "retrieve", "intercom")


def _key(number: int, key: BlfKey, features: dict[str, str]) -> dict[str, Any]:
    """One key as templates see it: ``dial`` is what a press dials (an intercom key: the
    intercom code and the extension), ``pickup`` what a press dials while the watched
    extension rings (empty: the phone's own way, or none), ``watch`` whether it is a BLF
    subscription (an intercom key is a speed dial)."""
    intercom = key.kind == "intercom"
    pickup = features["pickup"]
    return {
        "key": number,
        "label": key.label,
        "extension": key.extension,
        "kind": key.kind,
        "watch": not intercom,
        "dial": f"{features['intercom']}{key.extension}" if intercom else key.extension,
        "pickup": f"{pickup}{key.extension}" if key.kind == "blf" and pickup else "",
    }


def _variables(model: PhoneModel, ctx: ProvisioningContext) -> dict[str, Any]:
    family = model.family
    lines = sorted(ctx.lines, key=lambda line: line.index)
    first = _first_blf_key(model, ctx)
    features = {name: str(ctx.codes.get(name) or "") for name in KEY_FEATURES}
    # A tenant-wide override of the pickup prefix (an older setting) wins over the code.
    features["pickup"] = str(ctx.settings.get("blf_pickup_code") or features["pickup"])
    blf = [_key(first + n, key, features) for n, key in enumerate(ctx.blf_keys)]
    # Context fields are authoritative; ``settings`` adds every other resolved setting.
    settings = dict(ctx.settings)
    settings.update(
        ntp_server=ctx.ntp_server,
        time_zone=ctx.time_zone,
        language=ctx.language,
        transport=ctx.transport,
    )
    proxy = ctx.outbound_proxy or (ctx.sip_server if ctx.sip_server != ctx.sip_domain else None)
    return {
        "ctx": ctx,
        "model": model,
        "mac": ctx.mac,
        "MAC": ctx.mac.upper(),
        "lines": lines,
        "blf": blf,
        "handsets": [(number, ctx.line(index)) for number, index in ctx.handsets],
        "tz": time_zone_info(ctx.time_zone),
        "language": family.language(ctx.language),
        "proxy": proxy,
        "settings": settings,
        "features": features,
        "pcodes": {line.index: family.pcodes(line.index) for line in lines}
        if family.pcodes
        else {},
        "mpk": {key["key"]: family.mpk(key["key"]) for key in blf} if family.mpk else {},
    }


def _generate(template: Template, variables: dict[str, Any]) -> bytes:
    chunks: list[bytes] = []
    size = 0
    stream: Iterator[str] = template.generate(**variables)
    for chunk in stream:
        data = chunk.encode("utf-8")
        size += len(data)
        if size > MAX_OUTPUT_BYTES:
            raise ProvisioningError(f"rendered file exceeds {MAX_OUTPUT_BYTES} bytes")
        chunks.append(data)
    return b"".join(chunks)


def _render(
    model: PhoneModel, spec: FileSpec, template: Template, ctx: ProvisioningContext
) -> RenderedFile:
    _check_fits(model, ctx)
    content = _generate(template, _variables(model, ctx))
    return RenderedFile(
        content=content,
        content_type=f"{spec.content_type}; charset=utf-8",
        filename=spec.filename(ctx.mac),
    )


def render(model_id: str, filename_requested: str, context: ProvisioningContext) -> RenderedFile:
    """Render the shipped template behind ``filename_requested`` for ``context``.

    Raises :class:`ProvisioningError` (answer 404) for an unknown model, a file the model
    does not request, or another device's file; and when the context does not fit the
    model (too many lines, keys or handsets).
    """
    model = get_model(model_id)
    spec = _spec_for(model, filename_requested, context.mac)
    template = _env_for(spec).get_template(spec.template)
    return _render(model, spec, template, context)


def template_source(model_id: str, filename: str | None = None) -> str:
    """Source of the shipped template for a model's file (what a tenant clones)."""
    model = get_model(model_id)
    spec = model.files[0] if filename is None else _spec_by_pattern(model, filename)
    return (TEMPLATE_DIR / spec.template).read_text(encoding="utf-8")


def _spec_by_pattern(model: PhoneModel, filename: str) -> FileSpec:
    # Accept either a pattern ("{mac}-phone.cfg") or a concrete name ("0004f2…-phone.cfg").
    for spec in model.files:
        if filename == spec.pattern or _match_spec(spec, _basename(filename))[0]:
            return spec
    raise ProvisioningError(f"{model.name} does not request a file named {filename!r}")


def render_source(
    source: str, model_id: str, filename: str, context: ProvisioningContext
) -> RenderedFile:
    """Render a custom template ``source`` as the model's file ``filename``.

    Runs in the same sandbox as shipped templates (no attribute access to internals, no
    writes to passed objects, output capped at :data:`MAX_OUTPUT_BYTES`). ``filename`` may
    be a concrete name or a pattern such as ``{mac}.cfg``; it picks the escaping rules.
    Raises :class:`jinja2.TemplateError` or :class:`ProvisioningError`.
    """
    model = get_model(model_id)
    spec = _spec_by_pattern(model, filename)
    template = _compiled(source, spec.format is FileFormat.XML)
    return _render(model, spec, template, context)


@lru_cache(maxsize=512)
def _compiled(source: str, xml: bool) -> Template:
    """A custom template compiled once per process (keyed by its text: an edited template is
    another key, so nothing needs invalidating). Jinja templates are safe to share between
    threads."""
    return _ENVIRONMENTS[xml].from_string(source)


def sample_context(model_id: str) -> ProvisioningContext:
    """A context using every feature the model supports, with awkward characters in it.

    Used to preview and validate custom templates; the display name carries ``<&"'`` so a
    template that switches escaping off produces invalid XML and is caught.
    """
    model = get_model(model_id)
    accounts = min(model.max_accounts, 2)
    lines = tuple(
        Line(
            index=n,
            extension=f"10{n}",
            display_name=f"Ann <&\"'> Line {n}",
            auth_user=f"10{n}",
            password=f"s3cret&<{n}>",
            label=f"Ext 10{n}",
        )
        for n in range(1, accounts + 1)
    )
    spare = model.max_blf_keys - (accounts if model.family.blf_after_lines else 0)
    blf = tuple(BlfKey(label=f"Desk {n}", extension=f"20{n}") for n in range(1, min(2, spare) + 1))
    handsets = tuple((n, n) for n in range(1, accounts + 1)) if model.dect else ()
    return ProvisioningContext(
        mac="001565000001",
        model_id=model.id,
        lines=lines,
        sip_domain="tenant.example.com",
        sip_server="sip.example.com",
        sip_port=5060,
        transport="udp",
        outbound_proxy="proxy.example.com",
        time_zone="Europe/Berlin",
        language="en",
        ntp_server="pool.ntp.org",
        blf_keys=blf,
        firmware_url="https://fw.example.com/firmware.rom",
        branding=Branding(
            product_name="Example Phone",
            logo_url="https://cdn.example.com/logo.png",
            background_url="https://cdn.example.com/bg.jpg",
        ),
        provisioning_url="https://pbx.example.com/provision/abc123/",
        admin_password="admin-pw",  # noqa: S106 - sample data for previews
        handsets=handsets,
        codes={
            "pickup": "*97",
            "pickup_group": "*98",
            "park": "*68",
            "retrieve": "*88",
            "intercom": "*46",
        },  # fmt: skip
    )


def validate_template(source: str, model_id: str, filename: str | None = None) -> list[str]:
    """Problems with custom template ``source`` for a model's file; empty when it is fine.

    Compiles it in the sandbox, renders it against :func:`sample_context` and checks the
    output parses in the vendor's format. ``filename`` (name or pattern) selects which of
    the model's files the template stands for; default is the per-device file.
    """
    try:
        model = get_model(model_id)
        spec = model.files[0] if filename is None else _spec_by_pattern(model, filename)
    except ProvisioningError as exc:
        return [str(exc)]
    env = _env_for(spec)
    try:
        template = env.from_string(source)
    except TemplateSyntaxError as exc:
        return [f"line {exc.lineno}: syntax error: {exc.message}"]
    context = sample_context(model_id)
    try:
        rendered = _render(model, spec, template, context)
    except TemplateError as exc:
        # UndefinedError, SecurityError and friends: the message names the culprit.
        return [f"render error: {type(exc).__name__}: {exc.message or exc}"]
    except ProvisioningError as exc:
        return [f"render error: {exc}"]
    except Exception as exc:  # user code: any failure is a finding, not a crash
        return [f"render error: {type(exc).__name__}: {exc}"]
    try:
        text = rendered.content.decode("utf-8")
    except UnicodeDecodeError as exc:  # pragma: no cover - we encode as UTF-8 ourselves
        return [f"output is not UTF-8: {exc}"]
    return check_output(spec.format, text)
