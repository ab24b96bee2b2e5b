"""The process table of ``make run``: supervisord and systemd get every process, restarting.

User story: an operator runs the PBX with ``make run`` (supervisord) or with the systemd units
from ``deploy/systemd/``; in both, each process restarts on its own when it dies and the web
server runs with the configured number of workers.
"""

import configparser
from pathlib import Path

from pbx import processes

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["web", "worker", "beat", "sip", "rtpengine", "media", "fanout"]


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


def test_web_workers_and_commands_come_from_the_environment():
    env = {"PBX_WEB_WORKERS": "3", "PBX_HTTP_PORT": "9001", "PBX_RTP_PORT_MIN": "41000"}
    table = {p.name: p.argv for p in processes.processes(env)}
    web = table["web"]
    assert web[web.index("--workers") + 1] == "3"
    assert web[web.index("--port") + 1] == "9001"
    assert "--no-proxy-headers" in web  # client addresses only from our own trusted-proxy rule
    assert "--port-min=41000" in table["rtpengine"]
    assert processes.web_workers({}) >= 1


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
