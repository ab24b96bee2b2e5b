"""The PBX's long-running processes, in one place, and the supervisor configurations made from it.

``make run`` starts them under supervisord (``python -m pbx.processes supervisord``): a process
that dies (a crash, ``kill -9``) is restarted on its own, with supervisord's back-off when it
keeps dying at start, and the others run on. For production, ``python -m pbx.processes systemd``
writes one systemd unit per process and a ``pbx.target`` (see ``deploy/systemd/``).

No Django here: the configuration is made before Django is set up, from the same ``PBX_*``
environment variables the settings read.

    python -m pbx.processes supervisord [--out FILE]
    python -m pbx.processes systemd --root /opt/pbx --user pbx --env-file /etc/pbx/env [--out DIR]
    python -m pbx.processes exec NAME      # what both run: NAME's command, from the environment

Both configurations start ``python -m pbx.processes exec <name>``, which builds the command line
from the environment at that moment and replaces itself with it (``execv``: the supervisor's
child *is* the process, so a ``kill -9`` of it is seen as that process dying).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Process:
    name: str
    argv: list[str]
    description: str
    # Seconds to wait after SIGTERM before SIGKILL (a SIP engine finishing its transactions).
    stop_wait: int = 15


def _env(env: dict[str, str], name: str, default: str) -> str:
    return env.get(name) or default


def var_dir(env: dict[str, str], root: Path) -> Path:
    return Path(_env(env, "PBX_VAR_DIR", str(root / "var"))).resolve()


def recording_dir(env: dict[str, str], root: Path) -> Path:
    """rtpengine's recording directory (settings' SIP_RECORDING_DIR reads the same)."""
    return Path(
        _env(env, "PBX_RECORDING_DIR", str(var_dir(env, root) / "recordings" / "spool"))
    ).resolve()


def run_dir(env: dict[str, str], root: Path) -> Path:
    """Sockets, pid files, beat's schedule: ``PBX_RUN_DIR``, default ``var/run``."""
    return Path(_env(env, "PBX_RUN_DIR", str(var_dir(env, root) / "run"))).resolve()


def log_dir(env: dict[str, str], root: Path) -> Path:
    """One log file per process: ``PBX_LOG_DIR``, default ``var/log``."""
    return Path(_env(env, "PBX_LOG_DIR", str(var_dir(env, root) / "log"))).resolve()


def web_workers(env: Mapping[str, str] | None = None) -> int:
    """``PBX_WEB_WORKERS``, default: one per CPU core (the HTTP side is CPU-bound)."""
    value = (os.environ if env is None else env).get("PBX_WEB_WORKERS", "")
    return max(1, int(value)) if value.strip() else max(1, os.cpu_count() or 1)


def web_argv(
    venv_bin: Path, host: str, port: int | str, workers: int, *, access_log: bool = False
) -> list[str]:
    """uvicorn serving the ASGI application (HTTP and WebSockets) with several worker processes.

    The workers share the listening socket; Channels groups span them because the channel
    layer is Redis. uvicorn restarts a worker that dies. ``--no-proxy-headers``: the client
    address is taken from X-Forwarded-For only by our own code, and only when
    ``PBX_TRUST_X_FORWARDED_FOR`` says a trusted proxy is in front (uvicorn would otherwise
    trust any loopback peer's header).
    """
    argv = [
        str(venv_bin / "uvicorn"),
        "pbx.asgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--ws",
        "websockets",
        "--lifespan",
        "off",
        "--no-proxy-headers",
        "--no-server-header",
        "--timeout-graceful-shutdown",
        "10",
    ]
    if not access_log:
        argv.append("--no-access-log")
    return argv


def processes(env: dict[str, str] | None = None, root: Path = ROOT) -> list[Process]:
    """Every process ``make run`` starts, with its command line."""
    env = dict(os.environ if env is None else env)
    venv_bin = Path(sys.executable).parent
    python = sys.executable
    return [
        Process(
            "web",
            web_argv(
                venv_bin,
                _env(env, "PBX_HTTP_HOST", "127.0.0.1"),
                _env(env, "PBX_HTTP_PORT", "8000"),
                web_workers(env),
                access_log=_env(env, "PBX_WEB_ACCESS_LOG", "0") in {"1", "true", "yes", "on"},
            ),
            "portal, REST API, admin, provisioning, WebSockets (uvicorn, several workers)",
        ),
        Process(
            "worker",
            [str(venv_bin / "celery"), "-A", "pbx", "worker", "-l", "info", "--concurrency", "2"],
            "Celery worker: CDRs, imports, mail, webhooks",
            stop_wait=30,
        ),
        Process(
            "beat",
            [
                str(venv_bin / "celery"),
                "-A",
                "pbx",
                "beat",
                "-l",
                "info",
                "-s",
                str(run_dir(env, root) / "celerybeat-schedule"),
            ],
            "Celery beat: schedules",
        ),
        Process(
            "sip",
            [python, "manage.py", "sipengine"],
            "the SIP engine",
        ),
        Process(
            "rtpengine",
            [
                _env(env, "PBX_RTPENGINE_BIN", "rtpengine"),
                "--config-file=none",
                "--foreground",
                "--table=-1",
                f"--interface={_env(env, 'PBX_RTP_INTERFACE', '127.0.0.1')}",
                f"--listen-ng={_env(env, 'PBX_RTPENGINE_NG', '127.0.0.1:2223')}",
                f"--port-min={_env(env, 'PBX_RTP_PORT_MIN', '30000')}",
                f"--port-max={_env(env, 'PBX_RTP_PORT_MAX', '40000')}",
                # Call recording (userspace: pcap; "proc" needs the kernel module) and the
                # DTMF reports the engine reads its in-call codes from.
                "--recording-method=pcap",
                f"--recording-dir={recording_dir(env, root)}",
                # A call's media (and its recording file) ends when the engine deletes it:
                # rtpengine's default keeps it 30 s more, and the recording only then.
                "--delete-delay=0",
                f"--dtmf-log-dest={_env(env, 'PBX_RTPENGINE_DTMF', '127.0.0.1:2224')}",
                "--log-stderr",
            ],
            "the media relay (rtpengine, userspace)",
        ),
        Process(
            "media",
            [python, "manage.py", "mediaserver"],
            "the media server: prompts, music on hold, recording, DTMF (telephony.media)",
        ),
        Process(
            "fanout",
            [python, "manage.py", "events_fanout"],
            "engine events to live status (Channels) and webhooks",
        ),
    ]


def exec_argv(root: Path, name: str) -> list[str]:
    return [str(root / ".venv" / "bin" / "python"), "-m", "pbx.processes", "exec", name]


def supervisord_conf(env: dict[str, str] | None = None, root: Path = ROOT) -> str:
    """A supervisord configuration that runs every process in the foreground (``-n``).

    ``autorestart``: a process that exits is started again at once; one that dies before it
    has run ``startsecs`` goes to BACKOFF and is retried after 1, 2, 3, ... seconds, up to
    ``startretries`` times. The other processes are never touched.
    """
    env = dict(os.environ if env is None else env)
    run, logs = run_dir(env, root), log_dir(env, root)
    only = {n for n in _env(env, "PBX_PROCESSES", "").split(",") if n}
    lines = [
        "; Made by `python -m pbx.processes supervisord` (make run); edit pbx/processes.py.",
        "[supervisord]",
        "nodaemon=true",
        f"directory={root}",
        f"logfile={logs / 'supervisord.log'}",
        f"pidfile={run / 'supervisord.pid'}",
        f"childlogdir={logs}",
        "",
        "[unix_http_server]",
        f"file={run / 'supervisor.sock'}",
        "chmod=0700",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{run / 'supervisor.sock'}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
    ]
    for proc in processes(env, root):
        if only and proc.name not in only:
            continue
        command = shlex.join(exec_argv(root, proc.name))
        lines += [
            f"[program:{proc.name}]",
            f"command={command}",
            f"directory={root}",
            "autostart=true",
            "autorestart=true",
            "startsecs=2",
            # Effectively never FATAL: a process that cannot start while PostgreSQL or Redis is away
            # keeps being retried (1, 2, 3, ... s apart) and comes up when they are back.
            "startretries=1000",
            "stopsignal=TERM",
            f"stopwaitsecs={proc.stop_wait}",
            # uvicorn's and Celery's own children go with them.
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={logs / (proc.name + '.log')}",
            "stdout_logfile_maxbytes=50MB",
            "stdout_logfile_backups=5",
            'environment=PYTHONUNBUFFERED="1"',
            "",
        ]
    return "\n".join(lines)


def systemd_units(
    root: Path, user: str, env_file: str, env: dict[str, str] | None = None
) -> dict[str, str]:
    """One ``pbx-<name>.service`` per process and a ``pbx.target`` that wants them all.

    ``Restart=always`` with a short ``RestartSec`` and no start limit: a crashed process comes
    back within seconds however often it dies, and the others are not affected (each is a unit
    of its own; the target only groups them for start and stop).
    """
    units: dict[str, str] = {}
    names = []
    for proc in processes(env, root):
        name = f"pbx-{proc.name}.service"
        names.append(name)
        units[name] = "\n".join(
            [
                "[Unit]",
                f"Description=PBX {proc.name}: {proc.description}",
                "After=network-online.target postgresql.service redis-server.service",
                "Wants=network-online.target",
                "PartOf=pbx.target",
                "StartLimitIntervalSec=0",
                "",
                "[Service]",
                "Type=simple",
                f"User={user}",
                f"WorkingDirectory={root}",
                f"EnvironmentFile={env_file}",
                "Environment=PYTHONUNBUFFERED=1",
                f"ExecStart={shlex.join(exec_argv(root, proc.name))}",
                "Restart=always",
                "RestartSec=2",
                f"TimeoutStopSec={proc.stop_wait}",
                "KillMode=mixed",
                "NoNewPrivileges=true",
                "PrivateTmp=true",
                "",
                "[Install]",
                "WantedBy=pbx.target",
                "",
            ]
        )
    units["pbx.target"] = "\n".join(
        [
            "[Unit]",
            "Description=PBX (every process)",
            f"Wants={' '.join(names)}",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )
    return units


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sv = sub.add_parser("supervisord", help="the supervisord configuration make run uses")
    sv.add_argument("--out", help="write here (default: stdout)")
    sd = sub.add_parser("systemd", help="systemd unit files for production")
    sd.add_argument("--root", default="/opt/pbx", help="where the PBX is installed")
    sd.add_argument("--user", default="pbx")
    sd.add_argument("--env-file", default="/etc/pbx/env", help="the PBX_* variables")
    sd.add_argument("--out", default="deploy/systemd", help="directory for the unit files")
    ex = sub.add_parser("exec", help="replace this process with one PBX process")
    ex.add_argument("name")
    args = parser.parse_args(argv)
    if args.what == "exec":
        by_name = {p.name: p for p in processes()}
        if args.name not in by_name:
            parser.error(f"unknown process {args.name!r}; one of {', '.join(by_name)}")
        proc_argv = by_name[args.name].argv
        os.chdir(ROOT)
        if args.name == "rtpengine":
            recording_dir(dict(os.environ), ROOT).mkdir(parents=True, exist_ok=True)
        os.execvp(proc_argv[0], proc_argv)  # noqa: S606 - our own fixed command line
    if args.what == "supervisord":
        text = supervisord_conf()
        run_dir(dict(os.environ), ROOT).mkdir(parents=True, exist_ok=True)
        log_dir(dict(os.environ), ROOT).mkdir(parents=True, exist_ok=True)
        recording_dir(dict(os.environ), ROOT).mkdir(parents=True, exist_ok=True)
        if args.out:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
        else:
            sys.stdout.write(text)
        return
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in systemd_units(Path(args.root), args.user, args.env_file, env={}).items():
        (out_dir / name).write_text(text)
    sys.stdout.write(f"wrote {len(processes(env={}))} units and pbx.target to {out_dir}\n")


if __name__ == "__main__":
    main()
