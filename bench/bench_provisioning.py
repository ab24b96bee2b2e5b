"""Phone configuration fetches per second over HTTP, 10,000 devices, per-device authentication.

A scratch database gets one tenant with 10,000 extensions and 10,000 Yealink T54W phones (one
line each, each provisioned before: the power-cut case), their provisioning windows closed, so
every fetch must carry the phone's own HTTP credentials (Basic, compared in constant time
against the Fernet-decrypted password: no slow hash per fetch). Throughput: ``wrk`` fetches
random phones' ``<mac>.cfg`` on the tenant's host name over 8 keep-alive connections from the
web server of ``make run`` (uvicorn, a worker per core) and from the single daphne process it
used before, with CPU per request (server and PostgreSQL). Latency: one sequential httpx
client against uvicorn. Cases:

- plain path ``/prov/<mac>.cfg`` + Basic credentials (DHCP option 66 style);
- token path ``/prov/<token>/<mac>.cfg`` + Basic credentials (after the window);
- wrong password (401; the failure limit is raised so the client is not banned).

    python bench/bench_provisioning.py [--devices 10000] [--requests 1000] [--workers N]
                                       [--seconds 10] [--connections 8]
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    SERVERS,
    THROUGHPUT_COLUMNS,
    scratch,
    summary_ms,
    table,
    throughput_row,
    timed,
    web_server,
)

HOST = "prov.bench"
SIP_PASSWORD = "Bench-Sip-Secret-77"


def build_world(count: int) -> list[tuple[str, str, str, str]]:
    """The tenant, its extensions and phones; returns (mac, token, user, password) per phone."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from pbx.audit import SYSTEM
    from provisioning.models import Device, DeviceLine, DeviceStatus, new_http_password
    from telephony.models import Extension
    from tenants.actions import do_create_tenant
    from tenants.models import DeviceIndex

    tenant = do_create_tenant(
        name="Prov bench",
        slug="provbench",
        sip_domain=HOST,
        actor=SYSTEM,
        max_extensions=count,
        provisioning_settings={"max_devices": count},
    )
    closed = timezone.now() - timedelta(hours=1)
    phones = []
    with timed() as t, tenant_context(tenant):
        for start in range(0, count, 1000):
            exts, devices = [], []
            for i in range(start, min(start + 1000, count)):
                ext = Extension(number=str(10000 + i), display_name=f"Phone {i}")
                ext.set_sip_password(SIP_PASSWORD, tenant.sip_domain)
                exts.append(ext)
                # Phones already provisioned once (a site after a power cut): a fetch then only
                # notes its time in Redis. A phone's first fetch also writes its new status.
                device = Device(
                    mac=f"001565{i:06x}",
                    model_id="yealink-t54w",
                    provisioning_until=closed,
                    status=DeviceStatus.PROVISIONED,
                )
                password = new_http_password()
                device.set_http_password(password)
                devices.append(device)
                phones.append((device.mac, device.token, device.http_username, password))
            Extension.objects.bulk_create(exts)
            Device.objects.bulk_create(devices)
            DeviceLine.objects.bulk_create(
                DeviceLine(device=d, index=1, extension=e)
                for d, e in zip(devices, exts, strict=True)
            )
            DeviceIndex.objects.bulk_create(DeviceIndex(mac=d.mac, tenant=tenant) for d in devices)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    connection.set_schema_to_public()
    print(f"  {count:,} extensions + phones bulk-created in {t.s:.1f} s", flush=True)
    return phones


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def requests_for(phones, case: str, rng: random.Random):
    while True:
        mac, token, user, password = rng.choice(phones)
        if case == "plain":
            yield f"/prov/{mac}.cfg", basic(user, password), 200
        elif case == "token":
            yield f"/prov/{token}/{mac}.cfg", basic(user, password), 200
        else:
            yield f"/prov/{mac}.cfg", basic(user, "wrong-password"), 401


def run_sequential(base: str, phones, case: str, n: int, warmup: int):
    import httpx

    gen = requests_for(phones, case, random.Random(hash(case) & 0xFFFF))
    latencies = []
    with httpx.Client(base_url=base, headers={"Host": HOST, "User-Agent": UA}) as client:
        for i in range(warmup + n):
            path, auth, expected = next(gen)
            t0 = time.perf_counter()
            response = client.get(path, headers={"Authorization": auth})
            elapsed = time.perf_counter() - t0
            if response.status_code != expected:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
            if expected == 200 and SIP_PASSWORD not in response.text:
                raise RuntimeError(f"{path}: no SIP password in the file")
            if i >= warmup:
                latencies.append(elapsed)
    return latencies


UA = "Yealink SIP-T54W 96.86.0.70"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--workers", type=int, default=None, help="web workers (default: cores)")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per case")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    args = parser.parse_args(argv)

    # Wrong-password cases must not get this client banned (the limit is per address).
    os.environ["PBX_PROV_MAX_FAILURES"] = str(10 * args.requests + 1000)
    with scratch("provisioning"):
        from pbx.processes import web_workers

        workers = args.workers or web_workers()
        phones = build_world(args.devices)
        rng = random.Random(5)
        sample = rng.sample(phones, min(len(phones), 2000))
        throughput = []
        for kind in ("daphne", "uvicorn"):
            label = SERVERS[kind].format(workers=workers)
            with web_server(kind, workers) as server:
                for case, lines in (
                    (
                        "plain path + Basic",
                        [(f"/prov/{m}.cfg", "Authorization", basic(u, p)) for m, _, u, p in sample],
                    ),
                    (
                        "token path + Basic",
                        [
                            (f"/prov/{t}/{m}.cfg", "Authorization", basic(u, p))
                            for m, t, u, p in sample
                        ],
                    ),
                ):
                    row = throughput_row(
                        server,
                        HOST,
                        lines,
                        seconds=args.seconds,
                        connections=args.connections,
                        headers={"User-Agent": UA},
                    )
                    throughput.append([label, case, *row])
                    print(f"  {label}, {case}: {row[0]:.1f} req/s", flush=True)
        table(
            f"Configuration fetches, {args.devices:,} phones, per-device auth, wrk "
            f"{args.connections} connections for {args.seconds} s (target >= 500/s on 2 cores)",
            ["server", "case", *THROUGHPUT_COLUMNS],
            throughput,
        )

        rows = []
        with web_server("uvicorn", workers) as server:
            base = server.base
            for label, case in (
                ("plain path + Basic", "plain"),
                ("token path + Basic", "token"),
                ("wrong password (401)", "wrong"),
            ):
                latencies = run_sequential(base, phones, case, args.requests, args.warmup)
                s = summary_ms(latencies)
                rows.append([label, s["n"], s["n"] / (sum(latencies) or 1), s["p50"], s["p95"]])
        table(
            f"Configuration fetches via uvicorn, {args.devices:,} phones, one sequential client",
            ["case", "requests", "req/s", "p50 ms", "p95 ms"],
            rows,
        )


if __name__ == "__main__":
    main()
