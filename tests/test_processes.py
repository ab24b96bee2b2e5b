"""The process table of ``make run``: supervisord and systemd get every process, restarting.

User story: an operator runs the PBX with ``make run`` (supervisord) or with the systemd units
from ``deploy/systemd/``; in both, each process restarts on its own when it dies and the web
server runs with the configured number of workers.
"""

import configparser
import os
import subprocess
import sys
from pathlib import Path

from pbx import processes

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["web", "web-http", "worker", "beat", "sip", "rtpengine", "media", "fanout"]


def test_supervisord_runs_every_process_restarting():
    conf = configparser.RawConfigParser()
    conf.read_string(processes.supervisord_conf({"PBX_RUN_DIR": "/r", "PBX_LOG_DIR": "/l"}))
    programs = [s.removeprefix("program:") for s in conf.sections() if s.startswith("program:")]
    assert programs == NAMES
    for name in NAMES:
        section = conf[f"program:{name}"]
        assert section["autorestart"] == "true"
        assert int(section["startretries"]) >= 1000
        assert section["command"].endswith(f"-m pbx.processes exec {name}")
        assert section["stdout_logfile"] == f"/l/{name}.log"
        assert section["stopasgroup"] == section["killasgroup"] == "true"
    assert conf["unix_http_server"]["file"] == "/r/supervisor.sock"


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_web_workers_and_commands_come_from_the_environment():
    env = {"PBX_WEB_WORKERS": "3", "PBX_HTTPS_PORT": "9443", "PBX_RTP_PORT_MIN": "41000"}
    table = {p.name: p.argv for p in processes.processes(env)}
    web = table["web"]
    assert _option(web, "--workers") == "3"
    assert _option(web, "--port") == "9443"
    assert "--no-proxy-headers" in web  # client addresses only from our own trusted-proxy rule
    assert "--port-min=41000" in table["rtpengine"]
    assert processes.web_workers({}) >= 1


def test_the_web_server_listens_on_https_and_keeps_plain_http_for_phones():
    """By default ``web`` serves HTTPS with every worker, with the self-signed certificate
    ``make run`` makes (the SIP engine's), and ``web-http`` serves plain HTTP with one."""
    table = {p.name: p.argv for p in processes.processes({"PBX_VAR_DIR": "/v"})}
    web, plain = table["web"], table["web-http"]
    assert _option(web, "--port") == "8443"
    assert _option(web, "--ssl-certfile") == "/v/tls/sip.crt"
    assert _option(web, "--ssl-keyfile") == "/v/tls/sip.key"
    assert _option(plain, "--port") == "8000"
    assert _option(plain, "--workers") == "1"
    assert "--ssl-certfile" not in plain
    assert plain[1] == web[1] == "pbx.asgi:application"  # the same application behind both
    # Another certificate: the SIP engine's setting, or one of the web server's own.
    env = {"PBX_SIP_TLS_CERT": "/etc/pbx/sip.pem", "PBX_HTTPS_KEY": "/etc/pbx/web.key"}
    web = {p.name: p.argv for p in processes.processes(env)}["web"]
    assert _option(web, "--ssl-certfile") == "/etc/pbx/sip.pem"
    assert _option(web, "--ssl-keyfile") == "/etc/pbx/web.key"


def test_behind_a_tls_proxy_the_web_server_is_plain_http_only():
    env = {"PBX_HTTPS": "0", "PBX_HTTP_PORT": "9001", "PBX_WEB_WORKERS": "2"}
    table = {p.name: p.argv for p in processes.processes(env)}
    assert "web-http" not in table
    assert _option(table["web"], "--port") == "9001"
    assert _option(table["web"], "--workers") == "2"
    assert "--ssl-certfile" not in table["web"]


def test_make_run_prints_the_https_portal_and_plain_http_provisioning():
    text = processes.urls_text({"PBX_VAR_DIR": "/v"}, ROOT)
    assert "Portal:      https://localhost:8443/" in text
    assert "Demo tenant: https://demo.localhost:8443/" in text
    assert "API docs:    https://localhost:8443/api/v1/docs/" in text
    assert "Phones:      http://demo.localhost:8000/prov/<token>/" in text
    assert "/v/tls/sip.crt" in text
    text = processes.urls_text({"PBX_HTTPS_PORT": "443", "PBX_DEMO_HOST": "demo.example"}, ROOT)
    assert "Portal:      https://localhost/ " in text
    assert "https://demo.example/" in text
    text = processes.urls_text({"PBX_HTTPS": "off"}, ROOT)
    assert "Portal:      http://localhost:8000/" in text
    assert "Certificate" not in text


def test_the_web_server_refuses_to_start_without_its_certificate(tmp_path):
    """A clear sentence on stderr, not uvicorn's traceback, when the files are missing."""
    env = {**os.environ, "PBX_HTTPS": "1", "PBX_HTTPS_CERT": str(tmp_path / "none.crt")}
    done = subprocess.run(
        [sys.executable, "-m", "pbx.processes", "exec", "web"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"no HTTPS certificate or key at {tmp_path / 'none.crt'}" in done.stderr
    assert "Traceback" not in done.stderr


def test_committed_systemd_units_are_what_the_generator_makes():
    units = processes.systemd_units(Path("/opt/pbx"), "pbx", "/etc/pbx/env", env={})
    assert sorted(units) == sorted([f"pbx-{n}.service" for n in NAMES] + ["pbx.target"])
    for name, text in units.items():
        assert (ROOT / "deploy" / "systemd" / name).read_text() == text, name
        if name.endswith(".service"):
            assert "Restart=always" in text
            assert "StartLimitIntervalSec=0" in text


def test_rtpengine_records_in_pcap_files_and_reports_dtmf_to_the_engine():
    """rtpengine writes its recordings (userspace pcap) where the engine looks for them
    (``PBX_RECORDING_DIR``, by default under the var dir) and sends its DTMF reports to the
    engine's in-call code listener."""
    argv = {p.name: p.argv for p in processes.processes({"PBX_VAR_DIR": "/v"})}["rtpengine"]
    assert "--recording-method=pcap" in argv
    assert "--recording-dir=/v/recordings/spool" in argv
    assert "--dtmf-log-dest=127.0.0.1:2224" in argv
    assert "--delete-delay=0" in argv  # the recording is complete when the call is deleted
    env = {"PBX_RECORDING_DIR": "/rec", "PBX_RTPENGINE_DTMF": "10.0.0.5:3000"}
    argv = {p.name: p.argv for p in processes.processes(env)}["rtpengine"]
    assert "--recording-dir=/rec" in argv
    assert "--dtmf-log-dest=10.0.0.5:3000" in argv
