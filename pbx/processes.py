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
    python -m pbx.processes urls           # where to sign in (what ``make run`` prints)
    python -m pbx.processes names          # the processes it starts

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


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no variable read as the settings' ``env_bool`` reads it."""
    value = env.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def https_enabled(env: Mapping[str, str]) -> bool:
    """``PBX_HTTPS`` (default on): the web server terminates TLS itself on ``PBX_HTTPS_PORT``
    and plain HTTP is left to phones; off when a reverse proxy in front terminates TLS
    (``deploy/reverse-proxy.md``)."""
    return _flag(env, "PBX_HTTPS", True)


def https_files(env: dict[str, str], root: Path) -> tuple[Path, Path]:
    """The web server's certificate and key: ``PBX_HTTPS_CERT``/``PBX_HTTPS_KEY``, by default
    the SIP engine's (``PBX_SIP_TLS_CERT``/``KEY``, the self-signed ``var/tls/sip.{crt,key}``
    ``make run`` makes): one certificate a browser accepts for the portal and for the
    softphone's WSS alike."""
    tls = var_dir(env, root) / "tls"
    cert = _env(env, "PBX_HTTPS_CERT", _env(env, "PBX_SIP_TLS_CERT", str(tls / "sip.crt")))
    key = _env(env, "PBX_HTTPS_KEY", _env(env, "PBX_SIP_TLS_KEY", str(tls / "sip.key")))
    return Path(cert), Path(key)


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
    venv_bin: Path,
    host: str,
    port: int | str,
    workers: int,
    *,
    access_log: bool = False,
    tls: tuple[Path, Path] | None = None,
) -> list[str]:
    """uvicorn serving the ASGI application (HTTP and WebSockets) with several worker processes.

    The workers share the listening socket; Channels groups span them because the channel
    layer is Redis. uvicorn restarts a worker that dies. ``--no-proxy-headers``: the client
    address is taken from X-Forwarded-For only by our own code, and only when
    ``PBX_TRUST_X_FORWARDED_FOR`` says a trusted proxy is in front (uvicorn would otherwise
    trust any loopback peer's header). ``tls``: (certificate, key) to serve HTTPS and WSS.
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
    if tls is not None:
        argv += ["--ssl-certfile", str(tls[0]), "--ssl-keyfile", str(tls[1])]
    if not access_log:
        argv.append("--no-access-log")
    return argv


def web_processes(env: dict[str, str], root: Path, venv_bin: Path) -> list[Process]:
    """The web server: with ``PBX_HTTPS`` (the default) two uvicorn programs on the same ASGI
    application, ``web`` with every worker on HTTPS (``PBX_HTTPS_PORT``) and ``web-http`` with
    one worker on plain HTTP (``PBX_HTTP_PORT``), where desk phones fetch their files
    (``/prov/``, ``/provision/``), probes call ``/healthz``, and every other request is
    redirected to HTTPS (``pbx.middleware.HttpsRedirectMiddleware``). Without it, ``web``
    alone on plain HTTP, for a TLS proxy in front.

    Two programs rather than one server bound twice: a uvicorn server has one TLS setting for
    all its sockets, and binding both in each worker would take our own process manager in
    place of uvicorn's. The price is one more Django process (about 140 MB resident, measured
    after serving requests), enough for phones fetching files now and then.
    """
    host = _env(env, "PBX_HTTP_HOST", "127.0.0.1")
    http_port = _env(env, "PBX_HTTP_PORT", "8000")
    access_log = _flag(env, "PBX_WEB_ACCESS_LOG", False)
    if not https_enabled(env):
        return [
            Process(
                "web",
                web_argv(venv_bin, host, http_port, web_workers(env), access_log=access_log),
                "portal, REST API, admin, provisioning, WebSockets (uvicorn, several workers)",
            )
        ]
    return [
        Process(
            "web",
            web_argv(
                venv_bin,
                host,
                _env(env, "PBX_HTTPS_PORT", "8443"),
                web_workers(env),
                access_log=access_log,
                tls=https_files(env, root),
            ),
            "portal, REST API, admin, provisioning, WebSockets over HTTPS (uvicorn, several "
            "workers)",
        ),
        Process(
            "web-http",
            web_argv(venv_bin, host, http_port, 1, access_log=access_log),
            "plain HTTP for phones: provisioning and /healthz; every other page redirects to "
            "HTTPS (uvicorn, one worker)",
        ),
    ]


def _origin(scheme: str, host: str, port: str) -> str:
    default = {"http": "80", "https": "443"}[scheme]
    return f"{scheme}://{host}" if port == default else f"{scheme}://{host}:{port}"


def portal_urls(env: dict[str, str]) -> dict[str, str]:
    """Where ``make run``'s pages are, as it prints them: the portal on HTTPS (or plain HTTP
    without ``PBX_HTTPS``), provisioning on plain HTTP."""
    http_port = _env(env, "PBX_HTTP_PORT", "8000")
    if https_enabled(env):
        scheme, port = "https", _env(env, "PBX_HTTPS_PORT", "8443")
    else:
        scheme, port = "http", http_port
    demo = _env(env, "PBX_DEMO_HOST", "demo.localhost")
    return {
        "portal": _origin(scheme, "localhost", port) + "/",
        "demo": _origin(scheme, demo, port) + "/",
        "api_docs": _origin(scheme, "localhost", port) + "/api/v1/docs/",
        "provisioning": _origin("http", demo, http_port) + "/prov/",
    }


def urls_text(env: dict[str, str], root: Path) -> str:
    """What ``make run`` prints about where to go (``python -m pbx.processes urls``)."""
    urls = portal_urls(env)
    lines = [
        f"Portal:      {urls['portal']}  (system admin; see above for the sign-in)",
        f"Demo tenant: {urls['demo']}  (tenant admin; see above)",
        f"API docs:    {urls['api_docs']}",
        f"Phones:      {urls['provisioning']}<token>/  (provisioning, plain HTTP)",
    ]
    if https_enabled(env):
        cert, _ = https_files(env, root)
        lines.append(
            f"Certificate: {cert} (make run's own is self-signed: accept it once; README, HTTPS)"
        )
    return "\n".join(lines) + "\n"


def processes(env: dict[str, str] | None = None, root: Path = ROOT) -> list[Process]:
    """Every process ``make run`` starts, with its command line."""
    env = dict(os.environ if env is None else env)
    venv_bin = Path(sys.executable).parent
    python = sys.executable
    return [
        *web_processes(env, root, venv_bin),
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


def selected_names(env: dict[str, str], root: Path = ROOT) -> list[str]:
    """The processes supervisord runs: all, or those ``PBX_PROCESSES`` names (comma-separated)."""
    only = {n for n in _env(env, "PBX_PROCESSES", "").split(",") if n}
    return [p.name for p in processes(env, root) if not only or p.name in only]


def supervisord_conf(env: dict[str, str] | None = None, root: Path = ROOT) -> str:
    """A supervisord configuration that runs every process in the foreground (``-n``).

    ``autorestart``: a process that exits is started again at once; one that dies before it
    has run ``startsecs`` goes to BACKOFF and is retried after 1, 2, 3, ... seconds, up to
    ``startretries`` times. The other processes are never touched.
    """
    env = dict(os.environ if env is None else env)
    run, logs = run_dir(env, root), log_dir(env, root)
    names = selected_names(env, root)
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
        if proc.name not in names:
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
    of its own; the target only groups them for start and stop). Exit status 2 (refused to
    start as configured) is not restarted.
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
                # Exit 2 is a refusal to start as configured (``exec web-http`` with HTTPS
                # off behind a proxy): no use restarting it every 2 s.
                "RestartPreventExitStatus=2",
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
    sub.add_parser("urls", help="where the portal and provisioning are (make run prints it)")
    sub.add_parser("names", help="the processes make run starts")
    args = parser.parse_args(argv)
    if args.what == "urls":
        sys.stdout.write(urls_text(dict(os.environ), ROOT))
        return
    if args.what == "names":
        sys.stdout.write(" ".join(selected_names(dict(os.environ), ROOT)) + "\n")
        return
    if args.what == "exec":
        by_name = {p.name: p for p in processes()}
        if args.name == "web-http" and not https_enabled(os.environ):
            parser.error("web-http runs only with PBX_HTTPS on (without it, web serves HTTP)")
        if args.name not in by_name:
            parser.error(f"unknown process {args.name!r}; one of {', '.join(by_name)}")
        proc_argv = by_name[args.name].argv
        os.chdir(ROOT)
        if args.name == "web" and https_enabled(os.environ):
            missing = [str(f) for f in https_files(dict(os.environ), ROOT) if not f.is_file()]
            if missing:
                sys.stderr.write(
                    f"web: no HTTPS certificate or key at {', '.join(missing)}: run "
                    "scripts/bootstrap.sh (make run does), set PBX_HTTPS_CERT and "
                    "PBX_HTTPS_KEY, or PBX_HTTPS=0 behind a TLS proxy\n"
                )
                sys.exit(1)
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
