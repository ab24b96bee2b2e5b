"""One row of every resource the API exposes, made through the real actions (or, for the engine's
live state, written to Redis as the engine writes it), for a given owner: a tenant and a dealer.

The isolation walk seeds tenant B (dealer South) with one of each and proves tenant A's callers
reach none of them; the permission table seeds tenant A (dealer North) with the row each role
reads, changes and deletes. A resource the API gains needs a seeder here, or both fail.

Each seeder returns a :class:`Row`: the id as it goes into the resource's detail path, and
``state()``, the row's table's size and the row as stored (None once deleted), to prove a
refused write changed nothing and a permitted one did what it says.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django_tenants.utils import tenant_context

from pbx.audit import SYSTEM
from tests.conftest import PASSWORD

TEMPLATE_MODEL = "yealink-t54w"


@dataclass(frozen=True)
class Owner:
    """Whose rows to make: tenant-side rows in ``tenant``, platform-side rows under ``dealer``."""

    tenant: Any
    dealer: Any


@dataclass(frozen=True)
class Row:
    id: str
    state: Callable[[], Any]
    model: Any = None  # the Django model of a database row
    tenant: Any = None  # the tenant whose schema holds it (None: the public schema)


def model_row(model, pk, tenant=None, rows: Callable[[], Any] | None = None) -> Row:
    """A database row; its state is its table's count and the whole stored row (in ``tenant``'s
    schema for tenant-side models). ``rows``: the rows that count, when a deleted one stays."""

    def state():
        with tenant_context(tenant) if tenant is not None else nullcontext():
            live = rows() if rows is not None else model.objects.all()
            return live.count(), live.filter(pk=pk).values().first()

    return Row(str(pk), state, model, tenant)


@dataclass
class Seeds:
    """``seeds(resource, owner)`` makes one row of a resource (its URL prefix under /api/v1/);
    ``close()`` removes what was written to Redis (the database rolls back by itself)."""

    _keys: list[str] = field(default_factory=list)
    _undo: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self):
        self.redis = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)

    def __call__(self, resource: str, owner: Owner) -> Row:
        return SEEDERS[resource](self, owner)

    def close(self) -> None:
        for undo in reversed(self._undo):
            undo()
        if self._keys:
            self.redis.delete(*self._keys)
        self.redis.close()

    def redis_hash_row(self, key: str, name: str, value: dict) -> Row:
        self._keys.append(key)
        self.redis.hset(key, name, json.dumps(value))
        return Row(name, lambda: (self.redis.hlen(key), self.redis.hget(key, name)))

    def redis_key_row(self, key: str, name: str, value: dict) -> Row:
        self._keys.append(key)
        self.redis.set(key, json.dumps(value), px=600_000)
        return Row(name, lambda: (self.redis.exists(key), self.redis.get(key)))


SEEDERS: dict[str, Callable[[Seeds, Owner], Row]] = {}


def seeder(resource: str):
    def register(fn):
        SEEDERS[resource] = fn
        return fn

    return register


# ----------------------------------------------------------------------- tenant-side rows


@seeder("extensions")
def _extension(seeds: Seeds, owner: Owner) -> Row:
    from telephony.actions import do_create_extension
    from telephony.models import Extension

    with tenant_context(owner.tenant):
        ext, _ = do_create_extension(number="333", display_name="Seeded 333", actor=SYSTEM)
    return model_row(Extension, ext.pk, owner.tenant)


@seeder("devices")
def _device(seeds: Seeds, owner: Owner) -> Row:
    from provisioning.actions import do_add_device
    from provisioning.models import Device

    with tenant_context(owner.tenant):
        device = do_add_device(
            mac=f"001565{owner.tenant.pk:06x}",
            model_id=TEMPLATE_MODEL,
            label="Seeded",
            actor=SYSTEM,
        )
    return model_row(Device, device.pk, owner.tenant)


@seeder("phone-templates")
def _custom_template(seeds: Seeds, owner: Owner) -> Row:
    from provisioning.actions import do_save_custom_template
    from provisioning.models import CustomTemplate

    with tenant_context(owner.tenant):
        row = do_save_custom_template(
            model_id=TEMPLATE_MODEL, file_pattern="{mac}.cfg", actor=SYSTEM
        )
    return model_row(CustomTemplate, row.pk, owner.tenant)


@seeder("phone-models")
def _phone_model(seeds: Seeds, owner: Owner) -> Row:
    # The shipped catalogue: the same for every tenant, nothing in it to change.
    return Row(TEMPLATE_MODEL, lambda: (1, TEMPLATE_MODEL))


def _webhook(owner: Owner, description: str):
    from events.actions import do_create_webhook

    with tenant_context(owner.tenant):
        endpoint, _ = do_create_webhook(
            url="https://93.184.215.14/hook",
            event_types=["calls"],
            description=description,
            actor=SYSTEM,
        )
    return endpoint


def _event(owner: Owner):
    from events.actions import NewEvent, do_append_events

    with tenant_context(owner.tenant):
        (event,) = do_append_events(
            [NewEvent(type="call.started", payload={"call_id": f"seed-{owner.tenant.slug}"})]
        )
    return event


@seeder("webhooks")
def _webhook_row(seeds: Seeds, owner: Owner) -> Row:
    from events.models import WebhookEndpoint

    return model_row(WebhookEndpoint, _webhook(owner, "Seeded").pk, owner.tenant)


@seeder("events")
def _event_row(seeds: Seeds, owner: Owner) -> Row:
    from events.models import OutboxEvent

    return model_row(OutboxEvent, _event(owner).pk, owner.tenant)


@seeder("webhook-deliveries")
def _delivery(seeds: Seeds, owner: Owner) -> Row:
    from events.models import WebhookDelivery

    endpoint = _webhook(owner, "Seeded deliveries")
    event = _event(owner)
    with tenant_context(owner.tenant):
        delivery = WebhookDelivery.objects.get(endpoint=endpoint, event=event)
    return model_row(WebhookDelivery, delivery.pk, owner.tenant)


@seeder("cdrs")
def _cdr(seeds: Seeds, owner: Owner) -> Row:
    from telephony.engine.cdr import apply_events
    from telephony.models import Cdr

    call_id = f"seed-{owner.tenant.slug}"
    common = {"call_id": call_id, "schema": owner.tenant.schema_name, "segment": "1"}
    t0 = time.time() - 60
    with tenant_context(owner.tenant):
        apply_events(
            call_id,
            [
                {"type": "call.started", "ts": f"{t0}", "caller": "333", "callee": "334", **common},
                {"type": "call.ended", "ts": f"{t0 + 30}", "status": "answered", **common},
            ],
        )
        cdr = Cdr.objects.get(call_id=call_id)
    return model_row(Cdr, cdr.pk, owner.tenant)


@seeder("active-calls")
def _active_call(seeds: Seeds, owner: Owner) -> Row:
    from telephony.engine.store import redis_key
    from telephony.sip.contract import CALLS

    call_id = f"live-{owner.tenant.slug}"
    call = {
        "call_id": call_id,
        "state": "answered",
        "caller": "333",
        "caller_name": "Seeded 333",
        "callee": "334",
        "started_at": time.time(),
        "answered_at": time.time(),
        "legs": [{"leg": "a", "user": "333"}],
    }
    return seeds.redis_hash_row(redis_key(CALLS, schema=owner.tenant.schema_name), call_id, call)


@seeder("calls")
def _recorded_call(seeds: Seeds, owner: Owner) -> Row:
    """A live call whose recording ``POST /calls/{call_id}/recording/`` controls."""
    from telephony.engine.store import redis_key
    from telephony.sip.contract import CALLS

    call_id = f"rec-live-{owner.tenant.slug}"
    call = {"call_id": call_id, "state": "answered", "caller": "333", "callee": "334",
            "started_at": time.time(), "answered_at": time.time(), "legs": []}  # fmt: skip
    return seeds.redis_hash_row(redis_key(CALLS, schema=owner.tenant.schema_name), call_id, call)


@seeder("registrations")
def _registration(seeds: Seeds, owner: Owner) -> Row:
    from telephony.engine.store import redis_key
    from telephony.sip.contract import LOCATION

    now = time.time()
    contact = "sip:333@192.0.2.33:5060"
    binding = {
        "contact": contact,
        "transport": "udp",
        "source_host": "192.0.2.33",
        "source_port": 5060,
        "user_agent": "Seeded",
        "expires_at": now + 600,
        "registered_at": now,
    }
    key = redis_key(LOCATION, domain=owner.tenant.sip_domain, user="333")
    row = seeds.redis_hash_row(key, contact, binding)
    return Row("333", row.state)  # listed by extension


def routing_did(tenant) -> str:
    """The DID a tenant's seeded inbound rule answers (assigned to it by the seeder)."""
    return f"+1718555{tenant.pk % 10000:04d}"


def _routing_row(owner: Owner, kind: str, fields: dict) -> Row:
    from routing.actions import ROWS, do_create

    with tenant_context(owner.tenant):
        row = do_create(kind, actor=SYSTEM, fields=fields)
    return model_row(ROWS[kind].model, row.pk, owner.tenant)


@seeder("inbound-rules")
def _inbound_rule(seeds: Seeds, owner: Owner) -> Row:
    from trunks.actions import do_add_numbers

    did = routing_did(owner.tenant)
    do_add_numbers(actor=SYSTEM, number=did, dealer=owner.dealer, tenant=owner.tenant)
    target = {"kind": "reject", "target": "486"}
    return _routing_row(owner, "inbound", {"name": "Seeded", "number": did, "in_hours": target})


@seeder("outbound-rules")
def _outbound_rule(seeds: Seeds, owner: Owner) -> Row:
    trunk = _tenant_trunk(owner, "Seeded for rules")
    fields = {"name": "Seeded", "prefix": "9", "strip": 1, "trunks": [trunk.pk]}
    return _routing_row(owner, "outbound", fields)


@seeder("emergency-numbers")
def _emergency_number(seeds: Seeds, owner: Owner) -> Row:
    return _routing_row(owner, "emergency", {"number": "911"})


@seeder("blacklist")
def _blacklisted(seeds: Seeds, owner: Owner) -> Row:
    return _routing_row(owner, "blacklist", {"number": "+12025550100", "note": "Seeded"})


@seeder("ivrs")
def _ivr_menu(seeds: Seeds, owner: Owner) -> Row:
    from routing.ivr import do_create_ivr
    from routing.models import IvrMenu

    with tenant_context(owner.tenant):
        menu = do_create_ivr(actor=SYSTEM, fields={"number": "850", "name": "Seeded", "options": [
            {"digit": "1", "target": {"kind": "hangup"}}]})  # fmt: skip
    return model_row(IvrMenu, menu.pk, owner.tenant)


@seeder("ring-groups")
def _ring_group(seeds: Seeds, owner: Owner) -> Row:
    from telephony.models import RingGroup
    from telephony.team import do_create_ring_group

    number = _first_extension(owner.tenant)
    with tenant_context(owner.tenant):
        group = do_create_ring_group(actor=SYSTEM, fields={
            "number": "860", "name": "Seeded", "members": [{"number": number}]})  # fmt: skip
    return model_row(RingGroup, group.pk, owner.tenant)


@seeder("queues")
def _queue(seeds: Seeds, owner: Owner) -> Row:
    from callcenter.actions import do_create_queue
    from callcenter.models import Queue

    number = _first_extension(owner.tenant)
    with tenant_context(owner.tenant):
        queue = do_create_queue(actor=SYSTEM, fields={
            "number": "880", "name": "Seeded", "agents": [number]})  # fmt: skip
    return model_row(Queue, queue.pk, owner.tenant)


@seeder("agents")
def _agent_state(seeds: Seeds, owner: Owner) -> Row:
    """An agent's state in a queue, as the engine stores it (``POST /agents/{number}/state/``
    names the agent by its extension number)."""
    from telephony.engine.store import redis_key
    from telephony.sip.contract import AGENTS, AgentStatus, agent_field

    number = _first_extension(owner.tenant)
    key = redis_key(AGENTS, schema=owner.tenant.schema_name)
    row = seeds.redis_hash_row(key, agent_field("880", number), AgentStatus("ready").to_dict())
    return Row(number, row.state)


@seeder("agent-skills")
def _agent_skills(seeds: Seeds, owner: Owner) -> Row:
    from callcenter.actions import do_set_agent_skills
    from callcenter.models import AgentSkill
    from telephony.models import Extension

    number = _first_extension(owner.tenant)
    with tenant_context(owner.tenant):
        do_set_agent_skills(
            Extension.objects.get(number=number), actor=SYSTEM, skills={"seeded": 3}
        )

    def state():
        with tenant_context(owner.tenant):
            return list(AgentSkill.objects.values_list("extension__number", "skill", "level"))

    return Row(number, state)


@seeder("paging-groups")
def _paging_group(seeds: Seeds, owner: Owner) -> Row:
    from telephony.models import PagingGroup
    from telephony.team import do_create_paging_group

    number = _first_extension(owner.tenant)
    with tenant_context(owner.tenant):
        group = do_create_paging_group(
            actor=SYSTEM, fields={"number": "870", "name": "Seeded", "members": [number]}
        )
    return model_row(PagingGroup, group.pk, owner.tenant)


@seeder("pickup-groups")
def _pickup_group(seeds: Seeds, owner: Owner) -> Row:
    from telephony.models import PickupGroup
    from telephony.team import do_create_pickup_group

    number = _first_extension(owner.tenant)
    with tenant_context(owner.tenant):
        group = do_create_pickup_group(actor=SYSTEM, fields={"name": "Seeded", "members": [number]})
    return model_row(PickupGroup, group.pk, owner.tenant)


def _first_extension(tenant) -> str:
    from telephony.models import Extension

    with tenant_context(tenant):
        return Extension.objects.filter(enabled=True).order_by("number").first().number


@seeder("disa")
def _disa_entry(seeds: Seeds, owner: Owner) -> Row:
    from routing.disa import do_create_disa
    from routing.models import Disa

    number = _first_extension(owner.tenant)
    with tenant_context(owner.tenant):
        entry = do_create_disa(
            actor=SYSTEM, fields={"name": "Seeded", "pin": "4826", "extension": number}
        )
    return model_row(Disa, entry.pk, owner.tenant)


@seeder("user-groups")
def _user_group(seeds: Seeds, owner: Owner) -> Row:
    from telephony.models import UserGroup
    from telephony.user_groups import do_create_user_group

    number = _first_extension(owner.tenant)
    with tenant_context(owner.tenant):
        group = do_create_user_group(
            actor=SYSTEM, fields={"name": "Seeded", "description": "", "members": [number]}
        )
    return model_row(UserGroup, group.pk, owner.tenant)


@seeder("report-schedules")
def _report_schedule(seeds: Seeds, owner: Owner) -> Row:
    from billing.models import ReportSchedule
    from billing.report_schedules import do_create_report_schedule

    schedule = do_create_report_schedule(
        owner.tenant,
        actor=SYSTEM,
        fields={"name": "Seeded", "recipients": f"boss@{owner.tenant.slug}.test"},
    )
    return model_row(ReportSchedule, schedule.pk)


@seeder("holidays")
def _holiday(seeds: Seeds, owner: Owner) -> Row:
    import datetime

    return _routing_row(owner, "holiday", {"name": "Seeded", "start": datetime.date(2027, 12, 25)})


def _seeded_wav(relative: str) -> str:
    """A short tone as a WAV file at ``relative`` under MEDIA_ROOT (absolute path). Written
    under a name of its own and renamed into place: parallel test workers share MEDIA_ROOT,
    and one must never read a file another is writing."""
    import os
    import subprocess
    import uuid

    path = os.path.join(str(settings.MEDIA_ROOT), relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    part = f"{path}.{os.getpid()}-{uuid.uuid4().hex}.wav"
    subprocess.run(  # noqa: S603
        ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", part, "synth", "0.5", "sine", "440"],  # noqa: S607
        check=True,
        timeout=30,
    )
    os.replace(part, path)
    return path


@seeder("prompts")
def _prompt(seeds: Seeds, owner: Owner) -> Row:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from audio.actions import do_upload_prompt
    from audio.models import Prompt

    with open(_seeded_wav(f"seeded/{owner.tenant.schema_name}/prompt.wav"), "rb") as f:
        upload = SimpleUploadedFile("seeded.wav", f.read())
    with tenant_context(owner.tenant):
        prompt = do_upload_prompt(actor=SYSTEM, name="seeded-greeting", upload=upload)
    return model_row(Prompt, prompt.pk, owner.tenant)


@seeder("music-classes")
def _music_class(seeds: Seeds, owner: Owner) -> Row:
    from audio.actions import do_create_music_class
    from audio.models import MusicClass

    with tenant_context(owner.tenant):
        music = do_create_music_class(actor=SYSTEM, name="Seeded music")
    return model_row(MusicClass, music.pk, owner.tenant)


@seeder("mailboxes")
def _mailbox(seeds: Seeds, owner: Owner) -> Row:
    from audio.models import Mailbox
    from telephony.actions import do_create_extension

    with tenant_context(owner.tenant):
        ext, _ = do_create_extension(number="334", display_name="Seeded 334", actor=SYSTEM)
        pk = ext.mailbox.pk
    row = model_row(Mailbox, pk, owner.tenant)
    return Row("334", row.state, Mailbox, owner.tenant)  # mailboxes are named by extension


@seeder("voicemail")
def _voicemail(seeds: Seeds, owner: Owner) -> Row:
    import uuid

    from django.db import transaction

    from audio.engine import voicemail_left
    from audio.models import VoicemailMessage
    from telephony.models import Extension

    schema = owner.tenant.schema_name
    message = uuid.uuid4().hex
    with tenant_context(owner.tenant):
        box = Extension.objects.order_by("number").values_list("number", flat=True).first()
        path = _seeded_wav(f"tenants/{schema}/voicemail/{box}/{message}.wav")
        with transaction.atomic():
            voicemail_left({"schema": schema, "box": box, "message": message, "path": path,
                            "caller": "+12125550100", "seconds": "0.5"})  # fmt: skip
        pk = VoicemailMessage.objects.get(message_id=message).pk
    return model_row(VoicemailMessage, pk, owner.tenant)


@seeder("recordings")
def _recording(seeds: Seeds, owner: Owner) -> Row:
    import uuid

    from audio.models import Recording, RecordingStatus

    with tenant_context(owner.tenant):
        rec = Recording.objects.create(
            recording_id=uuid.uuid4().hex, call_id=f"seed-rec-{owner.tenant.slug}",
            caller="333", callee="334", status=RecordingStatus.FAILED, error="seeded",
        )  # fmt: skip
    return model_row(Recording, rec.pk, owner.tenant)


# --------------------------------------------------------------------- public-schema rows


def _user_row(email: str, **scope) -> Row:
    from tenants.actions import do_create_user
    from tenants.models import User

    user = do_create_user(
        email=email, password=PASSWORD, full_name="Seeded User", actor=SYSTEM, **scope
    )
    return model_row(User, user.pk)


@seeder("users")
def _user(seeds: Seeds, owner: Owner) -> Row:
    from tenants.choices import Role

    return _user_row(f"seeded@{owner.tenant.slug}.test", role=Role.TENANT_USER, tenant=owner.tenant)


def _role(owner: Owner, name: str):
    from tenants.actions import do_create_role

    return do_create_role(owner.tenant, name=name, permissions=["extensions.view"], actor=SYSTEM)


@seeder("roles")
def _role_row(seeds: Seeds, owner: Owner) -> Row:
    from tenants.models import TenantRole

    return model_row(TenantRole, _role(owner, "Seeded").pk)


@seeder("audit")
def _audit(seeds: Seeds, owner: Owner) -> Row:
    from pbx.models import AuditEntry

    role = _role(owner, "Audited")
    entry = AuditEntry.objects.get(tenant=owner.tenant, action="role.create", object_id=role.pk)
    return model_row(AuditEntry, entry.pk)


@seeder("tenants")
def _tenant(seeds: Seeds, owner: Owner) -> Row:
    # The owner itself (a new one would cost a schema clone per case); deleting it in a test
    # drops its schema inside the test's transaction, which rolls back.
    from tenants.access import live_tenants
    from tenants.models import Tenant

    return model_row(Tenant, owner.tenant.pk, rows=live_tenants)  # a deleted one: a tombstone


@seeder("dealers")
def _sub_dealer(seeds: Seeds, owner: Owner) -> Row:
    from dealers.actions import do_create_dealer
    from dealers.models import Dealer

    dealer = do_create_dealer(
        name=f"{owner.dealer.name} Sub", parent=owner.dealer, actor=SYSTEM, max_tenants=1
    )
    return model_row(Dealer, dealer.pk)


@seeder("platform-users")
def _dealer_admin(seeds: Seeds, owner: Owner) -> Row:
    from tenants.choices import Role

    email = f"seeded@{owner.dealer.name.lower()}.dealers.test"
    return _user_row(email, role=Role.DEALER_ADMIN, dealer=owner.dealer)


@seeder("brands")
def _brand(seeds: Seeds, owner: Owner) -> Row:
    from branding.actions import do_create_brand
    from branding.models import Brand

    brand = do_create_brand(
        dealer=owner.dealer, product_name=f"{owner.dealer.name} Voice", actor=SYSTEM
    )
    return model_row(Brand, brand.pk)


@seeder("sip-bans")
def _ban(seeds: Seeds, owner: Owner) -> Row:
    # The engines' bans are theirs, of no tenant or dealer: the owner plays no part.
    from telephony.engine.store import redis_key
    from telephony.sip.contract import BAN

    ip = "192.0.2.77"
    ban = {"reason": "auth", "banned_at": time.time()}
    return seeds.redis_key_row(redis_key(BAN, ip=ip), ip, ban)


def _tenant_trunk(owner: Owner, name: str):
    from trunks.actions import do_create_trunk

    fields = {"name": name, "kind": "ip", "host": "sip.seeded.test", "addresses": ["192.0.2.9"]}
    return do_create_trunk(actor=SYSTEM, fields=fields, tenant=owner.tenant)


@seeder("trunks")
def _trunk(seeds: Seeds, owner: Owner) -> Row:
    # The tenant's own trunk: the tenant uses and manages it on its host, and its dealer (the
    # dealer's subtree) on the provider's.
    from trunks.models import Trunk

    return model_row(Trunk, _tenant_trunk(owner, "Seeded trunk").pk)


@seeder("numbers")
def _number(seeds: Seeds, owner: Owner) -> Row:
    # Held by the dealer, assigned to the tenant: the tenant reads it, the dealer manages it.
    from trunks.actions import do_add_numbers
    from trunks.models import DidNumber

    (number,) = do_add_numbers(
        actor=SYSTEM,
        number=f"+1646555{owner.tenant.pk % 10000:04d}",
        dealer=owner.dealer,
        tenant=owner.tenant,
    )
    return model_row(DidNumber, number.pk)


def _rate_table(owner: Owner, name: str):
    from billing.rate_tables import do_create_rate_table

    return do_create_rate_table(actor=SYSTEM, fields={"name": name}, dealer=owner.dealer)


@seeder("rate-tables")
def _rate_table_row(seeds: Seeds, owner: Owner) -> Row:
    # The dealer's own sell table: its subtree's admins manage it on the provider's host.
    from billing.models import RateTable

    return model_row(RateTable, _rate_table(owner, f"{owner.dealer.name} seeded table").pk)


@seeder("rates")
def _rate(seeds: Seeds, owner: Owner) -> Row:
    from billing.models import Rate
    from billing.rate_tables import do_create_rate

    table = _rate_table(owner, f"{owner.dealer.name} seeded rates")
    rate = do_create_rate(table, actor=SYSTEM, fields={"prefix": "44", "per_minute": "0.01"})
    return model_row(Rate, rate.pk)


def _billing_account(owner: Owner):
    from billing.models import BillingAccount

    account, _ = BillingAccount.objects.get_or_create(
        tenant=owner.tenant, defaults={"mode": "postpaid"}
    )
    return account


@seeder("billing-accounts")
def _billing_account_row(seeds: Seeds, owner: Owner) -> Row:
    # Named by its tenant's id: the tenant's dealers set it and top it up.
    from billing.models import BillingAccount

    account = _billing_account(owner)

    def state():
        return BillingAccount.objects.count(), BillingAccount.objects.filter(
            pk=account.pk
        ).values().first()

    return Row(str(owner.tenant.pk), state, BillingAccount)


@seeder("billing-ledger")
def _ledger_row(seeds: Seeds, owner: Owner) -> Row:
    from billing.accounts import top_up
    from billing.models import LedgerEntry

    return model_row(LedgerEntry, top_up(_billing_account(owner), "5", note="Seeded").pk)


@seeder("billing-invoices")
def _invoice_row(seeds: Seeds, owner: Owner) -> Row:
    from datetime import date

    from billing.invoices import issue
    from billing.models import Invoice

    return model_row(Invoice, issue(_billing_account(owner), date(2026, 1, 1)).pk)


@functools.cache
def _seeded_pki():
    """One test PKI per process, and the bundle that makes the deployment trust its root."""
    import tempfile

    from tests.certkit import TestPki

    pki = TestPki("Seeded")
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as bundle:
        bundle.write(pki.root_pem)
    return pki, bundle.name


@seeder("certificates")
def _certificate(seeds: Seeds, owner: Owner) -> Row:
    # Uploaded for the tenant's SIP domain, under a test root trusted until ``close()``.
    from django.test.utils import override_settings

    from tenants.actions import do_upload_certificate
    from tenants.models import TenantCertificate

    pki, bundle = _seeded_pki()
    trusted = override_settings(TLS_TRUSTED_CA_FILES=[bundle])
    trusted.enable()
    seeds._undo.append(trusted.disable)
    leaf = pki.leaf(owner.tenant.sip_domain)
    cert = do_upload_certificate(owner.tenant, chain=leaf.chain_pem, key=leaf.key_pem, actor=SYSTEM)
    return model_row(TenantCertificate, cert.pk)


# ----------------------------------------------------------------------- request bodies


# A change to each resource that its PUT/PATCH accepts from a permitted caller: a refused
# write must then leave the row as it was, a permitted one must not.
CHANGES: dict[str, dict] = {
    "extensions": {"display_name": "Changed"},
    "devices": {"label": "Changed"},
    "phone-templates": {"source": "#!version:1.0.0.1\n# changed\n"},
    "webhooks": {"description": "Changed"},
    "users": {"full_name": "Changed"},
    "roles": {"name": "Changed"},
    "tenants": {"name": "Changed"},
    "dealers": {"name": "Changed"},
    "platform-users": {"full_name": "Changed"},
    "brands": {"product_name": "Changed"},
    "trunks": {"name": "Changed"},
    "numbers": {"description": "Changed"},
    "inbound-rules": {"name": "Changed"},
    "outbound-rules": {"name": "Changed"},
    "emergency-numbers": {"caller_id": "+12125550111"},
    "blacklist": {"note": "Changed"},
    "holidays": {"name": "Changed"},
    "ivrs": {"name": "Changed"},
    "prompts": {"description": "Changed"},
    "music-classes": {"name": "Changed"},
    "mailboxes": {"max_seconds": 60},
    "disa": {"name": "Changed"},
    "ring-groups": {"name": "Changed"},
    "paging-groups": {"name": "Changed"},
    "pickup-groups": {"name": "Changed"},
    "queues": {"name": "Changed"},
    "agent-skills": {"skills": {"changed": 5}},
    "user-groups": {"name": "Changed"},
    "report-schedules": {"name": "Changed"},
    "rate-tables": {"name": "Changed"},
    "rates": {"per_minute": "0.0200"},
    "billing-accounts": {"low_balance": "3.5"},
}


def create_body(resource: str, caller, owner: Owner) -> dict:
    """A body that creates a new row of ``resource`` when ``caller`` may (a dealer admin adds
    to its own dealer, the system admin to the owner's)."""
    if resource == "outbound-rules":
        from trunks.models import Trunk

        trunk = Trunk.objects.filter(tenant=owner.tenant).order_by("pk").first()
        return {"name": "New", "prefix": "8", "trunks": [trunk.pk] if trunk else []}
    if resource == "disa":
        return {"name": "New", "pin": "5937", "extension": _first_extension(owner.tenant)}
    if resource == "user-groups":
        return {"name": "New", "members": [_first_extension(owner.tenant)]}
    if resource == "rates":
        # Into a table the caller manages: the owner's, or a dealer admin's own dealer's.
        from billing.models import RateTable

        dealer = getattr(caller, "dealer", None) or owner.dealer
        table = RateTable.objects.filter(dealer=dealer).order_by("pk").first()
        table = table or _rate_table(Owner(owner.tenant, dealer), "New rates")
        return {"table_id": table.pk, "prefix": "49", "per_minute": "0.0100"}
    if resource == "certificates":
        leaf = _seeded_pki()[0].leaf(owner.tenant.sip_domain)
        return {"chain": leaf.chain_pem, "key": leaf.key_pem}
    reject = {"kind": "reject", "target": "486"}
    return {
        "trunks": {"name": "New", "kind": "ip", "host": "sip.new.test", "addresses": ["192.0.2.8"]},
        "numbers": {"number": "+13125550177"},
        "inbound-rules": {
            "name": "New",
            "number": routing_did(owner.tenant),
            "caller": "+12025550199",
            "in_hours": reject,
        },
        "emergency-numbers": {"number": "112"},
        "blacklist": {"number": "+12025550101"},
        "holidays": {"name": "New", "start": "2027-07-04"},
        "ivrs": {"number": "851", "name": "New"},
        "ring-groups": {"number": "861", "name": "New"},
        "paging-groups": {"number": "871", "name": "New"},
        "pickup-groups": {"name": "New"},
        "queues": {"number": "881", "name": "New"},
        "report-schedules": {"name": "New", "recipients": ["new@reports.test"]},
        "extensions": {"number": "556", "display_name": "New"},
        "devices": {"mac": "00:15:65:aa:bb:cc", "model_id": TEMPLATE_MODEL},
        "phone-templates": {"model_id": TEMPLATE_MODEL, "file_pattern": "y000000000000.cfg"},
        "webhooks": {"url": "https://93.184.215.14/new", "event_types": ["calls"]},
        "users": {"email": "new@users.test", "password": PASSWORD, "role": "tenant_user"},
        "roles": {"name": "New role", "permissions": []},
        "tenants": {"name": "New Co", "slug": "newco", "sip_domain": "newco.test"},
        "dealers": {"name": "New Dealer"},
        "platform-users": {
            "email": "new@dealers.test",
            "password": PASSWORD,
            "role": "dealer_admin",
            "dealer_id": getattr(caller, "dealer_id", None) or owner.dealer.pk,
        },
        "brands": {"product_name": "New Voice"},
        "prompts": {"name": "new-prompt", "file": _upload()},
        "music-classes": {"name": "New music"},
        "rate-tables": {"name": "New table"},
    }.get(resource, {})


def _upload():
    """A WAV upload for a multipart create (``is_upload``)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    with open(_seeded_wav("seeded/new.wav"), "rb") as f:
        return SimpleUploadedFile("new.wav", f.read())


def is_upload(body: dict) -> bool:
    """Whether a create body carries a file (sent multipart, not JSON)."""
    return any(hasattr(value, "read") for value in body.values())


def delete_body(resource: str, row: Row) -> dict | None:
    """What a DELETE of ``row`` carries: a tenant's deletion must repeat its identifier."""
    if resource == "tenants":
        return {"confirm": row.model.objects.get(pk=row.id).slug}
    return None
