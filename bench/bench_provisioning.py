"""Phone configuration fetches per second over HTTP, 10,000 devices, per-device authentication.

A scratch database gets one tenant with 10,000 extensions and 10,000 Yealink T54W phones (one
line each), their provisioning windows closed, so every fetch must carry the phone's own HTTP
credentials (Basic, compared in constant time against the Fernet-decrypted password: no slow
hash per fetch). A ``daphne pbx.asgi:application`` subprocess serves them on a free loopback
port; an httpx client with keep-alive fetches random phones' ``<mac>.cfg`` on the tenant's host
name, sequentially (latency) and from several threads (throughput). Cases:

- plain path ``/prov/<mac>.cfg`` + Basic credentials (DHCP option 66 style);
- token path ``/prov/<token>/<mac>.cfg`` + Basic credentials (after the window);
- wrong password (401; the failure limit is raised so the client is not banned).

    python bench/bench_provisioning.py [--devices 10000] [--requests 1000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import scratch, summary_ms, table, timed  # noqa: E402

HOST = "prov.bench"
SIP_PASSWORD = "Bench-Sip-Secret-77"


def build_world(count: int) -> list[tuple[str, str, str, str]]:
    """The tenant, its extensions and phones; returns (mac, token, user, password) per phone."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from pbx.audit import SYSTEM
    from provisioning.models import Device, DeviceLine, new_http_password
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
                device = Device(
                    mac=f"001565{i:06x}", model_id="yealink-t54w", provisioning_until=closed
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


def run_concurrent(base: str, phones, threads: int, n: int) -> tuple[int, float]:
    import httpx

    done = [0]
    lock = threading.Lock()

    def worker(seed: int) -> None:
        gen = requests_for(phones, "plain", random.Random(seed))
        with httpx.Client(base_url=base, headers={"Host": HOST, "User-Agent": UA}) as client:
            for _ in range(n // threads):
                path, auth, _ = next(gen)
                client.get(path, headers={"Authorization": auth}).raise_for_status()
                with lock:
                    done[0] += 1

    workers = [threading.Thread(target=worker, args=(s,)) for s in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return done[0], time.perf_counter() - started


UA = "Yealink SIP-T54W 96.86.0.70"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)

    # Wrong-password cases must not get this client banned (the limit is per address).
    os.environ["PBX_PROV_MAX_FAILURES"] = str(10 * args.requests + 1000)
    with scratch("provisioning"):
        from bench.bench_api import daphne_server

        phones = build_world(args.devices)
        rows = []
        with daphne_server() as base:
            for label, case in (
                ("plain path + Basic", "plain"),
                ("token path + Basic", "token"),
                ("wrong password (401)", "wrong"),
            ):
                latencies = run_sequential(base, phones, case, args.requests, args.warmup)
                s = summary_ms(latencies)
                rows.append([label, s["n"], s["n"] / (sum(latencies) or 1), s["p50"], s["p95"]])
            done, elapsed = run_concurrent(
                base, phones, args.concurrency, args.requests * args.concurrency
            )
            rows.append(
                [f"plain + Basic, {args.concurrency} clients", done, done / elapsed, None, None]
            )
        table(
            f"Configuration fetches via daphne, {args.devices:,} phones, per-device auth",
            ["case", "requests", "req/s", "p50 ms", "p95 ms"],
            [[c if c is not None else "—" for c in row] for row in rows],
        )


if __name__ == "__main__":
    main()
