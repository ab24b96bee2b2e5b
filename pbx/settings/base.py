"""Settings shared by every environment.

Every host, port and secret comes from the environment (``PBX_*``), with defaults that are safe
on a developer's machine: services on loopback, secrets generated once into ``var/`` (ignored by
git) rather than written into the repository.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("PBX_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def local_secret(name: str, factory=lambda: secrets.token_urlsafe(50)) -> str:
    """A secret from ``PBX_<NAME>``, else one generated once and kept in ``var/``.

    Production sets the variable; a developer's machine gets a stable random value without any
    secret living in the repository.
    """
    from_env = os.environ.get(f"PBX_{name.upper()}")
    if from_env:
        return from_env
    path = VAR_DIR / "secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = factory()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _certifi_bundle() -> list[str]:
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with requests
        return []
    return [certifi.where()]


SECRET_KEY = local_secret("secret_key")
# Key for SIP passwords at rest (Fernet). Comma-separated list: the first encrypts, all decrypt,
# so a key can be rotated without a flag day.
FIELD_ENCRYPTION_KEYS = local_secret("field_key", _fernet_key).split(",")

DEBUG = env_bool("PBX_DEBUG", False)
# Which host names are served is decided per request by tenants.middleware.TenantMiddleware:
# the provider's hosts (PBX_PUBLIC_HOSTS) and the tenants' domains, i.e. the rows of
# tenants.Domain (cached); any other Host header answers 400. Django's own list therefore only
# checks the header's syntax; PBX_ALLOWED_HOSTS can narrow it further (e.g. ".example.com").
ALLOWED_HOSTS = [h for h in env("PBX_ALLOWED_HOSTS", "*").split(",") if h]
PBX_PUBLIC_HOSTS = [h for h in env("PBX_PUBLIC_HOSTS", "localhost,127.0.0.1").split(",") if h]
# Host name -> tenant answers kept in each web process (tenants.hosts); a Tenant or Domain change
# invalidates them at once, this only bounds changes made behind the models' back. 0: no cache.
PBX_HOST_CACHE_SECONDS = env_int("PBX_HOST_CACHE_SECONDS", 60)
# The user behind a bearer token is kept this long per web process (tenants.user_cache); any
# save of the user invalidates it at once. 0: load it from the database on every request.
PBX_USER_CACHE_SECONDS = env_int("PBX_USER_CACHE_SECONDS", 30)
PBX_PRODUCT_NAME = env("PBX_PRODUCT_NAME", "Cloud PBX")
# Invitations (a new admin sets its own password): how long the e-mailed link works, and the
# scheme/port of links made where no request tells them (an invite sent from the admin site
# or a command uses the request's when there is one).
PBX_INVITE_DAYS = env_int("PBX_INVITE_DAYS", 7)
PASSWORD_RESET_TIMEOUT = PBX_INVITE_DAYS * 86400
PBX_PORTAL_URL_SCHEME = env("PBX_PORTAL_URL_SCHEME", "")
PBX_PORTAL_URL_PORT = env("PBX_PORTAL_URL_PORT", "")
PBX_HTTP_PORT = env_int("PBX_HTTP_PORT", 8000)

# HTTPS (pbx/processes.py): by default the web server terminates TLS itself on PBX_HTTPS_PORT
# (browsers give microphones and secure WebSockets only to a secure origin) and keeps plain
# HTTP on PBX_HTTP_PORT for desk phones' provisioning and /healthz, redirecting everything else
# (pbx.middleware.HttpsRedirectMiddleware). PBX_HTTPS=0 behind a reverse proxy that terminates
# TLS (deploy/reverse-proxy.md): the web server is then plain HTTP only, and
# PBX_TRUST_X_FORWARDED_PROTO makes Django take the proxy's word that the request was HTTPS.
PBX_HTTPS = env_bool("PBX_HTTPS", True)
PBX_HTTPS_PORT = env_int("PBX_HTTPS_PORT", 8443)
PBX_TRUST_X_FORWARDED_PROTO = env_bool("PBX_TRUST_X_FORWARDED_PROTO", False)
if PBX_TRUST_X_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Cookies only over HTTPS when browsers come over HTTPS (the plain listener's provisioning and
# health check use none).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PBX_HTTPS or PBX_TRUST_X_FORWARDED_PROTO
# A form posted from the portal names its origin; Django accepts the request's own host and
# port, and these: the provider's hosts on the HTTPS port, and PBX_CSRF_TRUSTED_ORIGINS
# (comma-separated, e.g. "https://portal.example.com,https://*.example.com" behind a proxy
# that rewrites Host).
CSRF_TRUSTED_ORIGINS = [
    *(
        f"https://{host if ':' not in host else f'[{host}]'}"
        + ("" if PBX_HTTPS_PORT == 443 else f":{PBX_HTTPS_PORT}")
        for host in PBX_PUBLIC_HOSTS
        if PBX_HTTPS
    ),
    *(o.strip() for o in env("PBX_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()),
]
# HSTS is off by default: with make run's self-signed certificate a browser that was told to
# insist on HTTPS could never be let past a certificate warning again. With a real
# certificate, set PBX_HSTS_SECONDS (e.g. 31536000).
SECURE_HSTS_SECONDS = env_int("PBX_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("PBX_HSTS_INCLUDE_SUBDOMAINS", False)

SHARED_APPS = [
    "django_tenants",
    "daphne",
    "pbx",
    "tenants",
    "dealers",
    "billing",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by us (no CDN)
    "django_filters",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "branding",
    "trunks",
]
TENANT_APPS = [
    "telephony",
    "routing",
    "provisioning",
    "events",
    "audio",
    "callcenter",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
# New tenants are cloned from an always-migrated template schema: creating a tenant costs a
# schema copy, not a full migration run (see tenants.actions.ensure_template_schema).
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
# Issue "SET search_path" only when the schema changes, not before every query.
TENANT_LIMIT_SET_CALLS = True

MIDDLEWARE = [
    "pbx.middleware.ServiceUnavailableMiddleware",
    "pbx.middleware.RejectNulMiddleware",
    "tenants.middleware.TenantMiddleware",
    # After the tenant's: only a host the PBX serves is redirected (any other gets its 400).
    "pbx.middleware.HttpsRedirectMiddleware",
    "pbx.middleware.TenantTimeZoneMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.TenantAccessMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "pbx.urls"
ASGI_APPLICATION = "pbx.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "pbx.context_processors.portal",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django_tenants.postgresql_backend",
        "NAME": env("PBX_DB_NAME", "pbx"),
        "USER": env("PBX_DB_USER", "pbx"),
        # scripts/bootstrap.sh gives the role this generated password (var/secrets/db_password).
        "PASSWORD": local_secret("db_password", lambda: secrets.token_hex(24)),
        "HOST": env("PBX_DB_HOST", "127.0.0.1"),
        "PORT": env("PBX_DB_PORT", "5432"),
        # ASGI runs each request on a fresh thread, so persistent connections are never reused;
        # a pool is (a new PostgreSQL connection costs more than most API requests).
        "CONN_MAX_AGE": 0,
        "OPTIONS": {
            "connect_timeout": 3,
            **(
                {"pool": {"min_size": 1, "max_size": env_int("PBX_DB_POOL_MAX", 16), "timeout": 5}}
                if env_bool("PBX_DB_POOL", True)
                else {}
            ),
        },
    }
}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("PBX_REDIS_URL", "redis://127.0.0.1:6379/0")
# Before every Redis name the SIP engine and Django share (telephony/sip/contract.py): several
# PBXs on one Redis each set their own.
SIP_REDIS_PREFIX = env("PBX_SIP_REDIS_PREFIX", "")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
    },
    # Security state — revoked sign-in sessions, rate-limit and lock-out counters — must be one
    # for the whole installation: the default cache's key function (django-tenants) puts the
    # host's schema in every key, so a counter or a revocation would hold on one host only.
    "security": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "pbx:sec",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
    },
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"


def channel_layer_host(url: str) -> dict[str, Any]:
    """A channel layer's Redis: its reads wait up to 5 s (channels_redis' BZPOPMIN), so the
    socket's timeout must be longer than that (redis-py 8's default is 5 s: every consumer
    would fail with a TimeoutError and its WebSocket close after 5 quiet seconds)."""
    return {"address": url, "socket_timeout": 15}


CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [channel_layer_host(REDIS_URL)]},
    }
}

CELERY_BROKER_URL = env("PBX_CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("PBX_CELERY_EAGER", False)
# Imported by the worker and by beat at start: their tasks and beat entries (CDR drain, webhook
# sweep, outbox pruning) are registered on import.
CELERY_IMPORTS = (
    "pbx.imports",
    "telephony.engine.tasks",
    "events.tasks",
    "provisioning.tasks",
    "pbx.portal.health",  # the workers' heartbeat the provider's dashboard reads
    "audio.tasks",  # call recordings: conversion, upload retries, retention
)

AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    # The only backend: allauth's own would authenticate regardless of the host's tenant.
    "tenants.auth.HostScopedBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/portal/"

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
# Domains (besides the provider's own senders) whose addresses tenants and dealers may use as
# their brand's mail sender: domains the provider has set up to send from (SPF/DKIM).
PBX_MAIL_SENDER_DOMAINS = [d for d in env("PBX_MAIL_SENDER_DOMAINS", "").split(",") if d]
# Outgoing mail (invitations, voicemail) through an SMTP relay. TLS: STARTTLS on the port
# (587); SSL: TLS from the first byte (465). The sender is each brand's (branding.mail).
EMAIL_HOST = env("PBX_SMTP_HOST", "localhost")
EMAIL_PORT = env_int("PBX_SMTP_PORT", 25)
EMAIL_HOST_USER = env("PBX_SMTP_USER", "")
EMAIL_HOST_PASSWORD = env("PBX_SMTP_PASSWORD", "")
EMAIL_USE_TLS = env_bool("PBX_SMTP_TLS", False)
EMAIL_USE_SSL = env_bool("PBX_SMTP_SSL", False)
EMAIL_TIMEOUT = env_int("PBX_SMTP_TIMEOUT", 30)
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_ADAPTER = "tenants.auth.AccountAdapter"
ACCOUNT_FORMS = {
    "login": "tenants.forms.LoginForm",
    "reset_password": "tenants.forms.ResetPasswordForm",
}
ACCOUNT_LOGOUT_ON_GET = False
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Prompts, music on hold, voicemail (written by the web side, the workers and the media
# server; read by the media server): absolute, the same path for every process.
MEDIA_ROOT = Path(env("PBX_MEDIA_DIR", str(VAR_DIR / "media"))).resolve()

# The largest JSON body the API reads (bytes); a larger one answers 413.
PBX_API_MAX_BODY = env_int("PBX_API_MAX_BODY", 1024 * 1024)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "pbx.api.authentication.TenantJWTAuthentication",
        "pbx.api.authentication.PortalSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["pbx.api.permissions.DenyAll"],
    "DEFAULT_PARSER_CLASSES": [
        "pbx.api.parsers.JSONParser",
        "pbx.api.parsers.FormParser",
        "pbx.api.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "pbx.api.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "pbx.api.filters.FilterBackend",
        "pbx.api.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "SEARCH_PARAM": "q",
    "EXCEPTION_HANDLER": "pbx.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "pbx.api.throttling.TokenRateThrottle",
        "pbx.api.throttling.AddressRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "token": env("PBX_API_RATE_PER_TOKEN", "600/min"),
        "address": env("PBX_API_RATE_PER_ADDRESS", "1200/min"),
        "signin": env("PBX_API_RATE_SIGNIN", "20/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("PBX_ACCESS_TOKEN_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("PBX_REFRESH_TOKEN_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": SECRET_KEY,
}
# Per-account lock-out: this many wrong passwords for one account (from any addresses) within
# the window lock it for PBX_AUTH_LOCKOUT_MINUTES, on every sign-in path. 0 turns it off.
PBX_AUTH_LOCKOUT_FAILURES = env_int("PBX_AUTH_LOCKOUT_FAILURES", 10)
PBX_AUTH_LOCKOUT_WINDOW_MINUTES = env_int("PBX_AUTH_LOCKOUT_WINDOW_MINUTES", 15)
PBX_AUTH_LOCKOUT_MINUTES = env_int("PBX_AUTH_LOCKOUT_MINUTES", 15)
SPECTACULAR_SETTINGS = {
    "TITLE": "PBX REST API",
    "DESCRIPTION": "Service provider, dealer and tenant administration of the hosted PBX.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page loads Swagger UI from our own /static/, not from a CDN: it works offline and
    # no third party sees who reads the API docs.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# SIP engine (telephony/sip) — every port and host from the environment.
SIP_HOST = env("PBX_SIP_HOST", "127.0.0.1")
SIP_UDP_PORT = env_int("PBX_SIP_PORT", 5060)
SIP_TLS_PORT = env_int("PBX_SIP_TLS_PORT", 5061)
SIP_WS_PORT = env_int("PBX_SIP_WS_PORT", 8088)
SIP_WSS_PORT = env_int("PBX_SIP_WSS_PORT", 8089)
SIP_TLS_CERT = env("PBX_SIP_TLS_CERT", str(VAR_DIR / "tls" / "sip.crt"))
SIP_TLS_KEY = env("PBX_SIP_TLS_KEY", str(VAR_DIR / "tls" / "sip.key"))
# The browser softphone's SIP WebSocket (telephony.webphone.softphone_ws_url). Unset:
# wss://<the host the browser used>:<SIP_WSS_PORT>, the engine's own WSS listener. Behind a
# reverse proxy, its public URL; "{host}" stands for the host the browser used, e.g.
# "wss://{host}/sip" (deploy/reverse-proxy.md).
PBX_SIP_WSS_URL = env("PBX_SIP_WSS_URL", "")
# The roots a tenant's own certificate (tenants.certificates) must chain to: the system's
# bundle, certifi's, and the deployment's extra PEM files (PBX_TLS_EXTRA_CAS, ":"-separated:
# a private CA the tenants' phones trust).
TLS_TRUSTED_CA_FILES = [
    "/etc/ssl/certs/ca-certificates.crt",
    *_certifi_bundle(),
    *[p for p in env("PBX_TLS_EXTRA_CAS", "").split(":") if p],
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("PBX_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django_tenants": {"level": "WARNING"},
    },
}

# Phone provisioning (provisioning/): where phones are told to register, and the rules of the
# provisioning endpoints. See provisioning/README.md.
PBX_SIP_PUBLIC_HOST = env("PBX_SIP_PUBLIC_HOST", SIP_HOST)  # the SIP server host phones dial
# The public URL of provisioning when it differs from the web listener (a TLS proxy in front:
# PBX_PROV_URL_SCHEME=https, PBX_PROV_URL_PORT empty for 443). Unset: URLs name the scheme and
# port the admin's request came in on, or plain HTTP on PBX_HTTP_PORT (the web process).
PBX_PROV_URL_SCHEME = env("PBX_PROV_URL_SCHEME", "")
PBX_PROV_URL_PORT = env_int("PBX_PROV_URL_PORT", 0)  # 0: the scheme's default port
PBX_PROV_WINDOW_HOURS = env_int("PBX_PROV_WINDOW_HOURS", 72)  # token alone works this long
PBX_PROV_MAX_FAILURES = env_int("PBX_PROV_MAX_FAILURES", 20)  # failed fetches per address...
PBX_PROV_FAILURE_WINDOW = env_int("PBX_PROV_FAILURE_WINDOW", 300)  # ...within these seconds
PBX_PROV_BAN_SECONDS = env_int("PBX_PROV_BAN_SECONDS", 900)  # then 429 for this long
# Repeated fetches are noted in Redis and written to the devices in batches this often (s).
PBX_PROV_FETCH_FLUSH_SECONDS = env_int("PBX_PROV_FETCH_FLUSH_SECONDS", 5)
PBX_PROV_DEVICES_PER_EXTENSION = env_int("PBX_PROV_DEVICES_PER_EXTENSION", 3)  # device quota
PBX_PROV_TFTP_HOST = env("PBX_PROV_TFTP_HOST", "0.0.0.0")  # noqa: S104 - phones on any LAN
PBX_PROV_TFTP_PORT = env_int("PBX_PROV_TFTP_PORT", 69)
PBX_PROV_PNP_INTERFACE = env("PBX_PROV_PNP_INTERFACE", "0.0.0.0")  # noqa: S104
PBX_PROVISIONING_DEFAULTS = {  # layer "system" of the provisioning settings
    "transport": env("PBX_PROV_TRANSPORT", "udp"),
    "time_zone": "UTC",
    "language": "en",
    "ntp_server": env("PBX_PROV_NTP_SERVER", "pool.ntp.org"),
    "product_name": PBX_PRODUCT_NAME,
}

# Bulk imports (pbx/imports.py): a checked file (it may hold SIP passwords) is dropped
# when not started within this many minutes; a run queued or running this long is lost.
PBX_IMPORT_PAYLOAD_TTL_MINUTES = env_int("PBX_IMPORT_PAYLOAD_TTL_MINUTES", 60)
PBX_IMPORT_STALE_HOURS = env_int("PBX_IMPORT_STALE_HOURS", 24)

# Webhooks (events/webhooks.py): by default only public addresses are called (no SSRF into
# the provider's own networks). On-premise receivers (a CRM on 10.1.2.3) are allowed by listing
# their networks, comma- or space-separated CIDRs: PBX_WEBHOOK_ALLOWED_NETWORKS=10.1.2.0/24
PBX_WEBHOOK_ALLOWED_NETWORKS = [
    n for n in env("PBX_WEBHOOK_ALLOWED_NETWORKS", "").replace(",", " ").split() if n
]

# SIP engine call layer (telephony/sip/calls/), passed in by ``manage.py sipengine``.
SIP_RTPENGINE_NG = env("PBX_RTPENGINE_NG", "127.0.0.1:2223")  # rtpengine's ng; "" = no anchoring
SIP_NO_ANSWER_TIMEOUT = float(env("PBX_NO_ANSWER_TIMEOUT", "30"))  # unless the extension says
SIP_ANCHOR_ALL = env_bool("PBX_ANCHOR_ALL", False)  # all media via rtpengine, not only NAT
# Call recording: where rtpengine writes its pcaps (``--recording-dir``: pcaps/, metadata/)
# and where it sends its DTMF reports (``--dtmf-log-dest``), the engine's in-call codes.
SIP_RECORDING_DIR = Path(env("PBX_RECORDING_DIR", str(VAR_DIR / "recordings" / "spool"))).resolve()
SIP_RTPENGINE_DTMF = env("PBX_RTPENGINE_DTMF", "127.0.0.1:2224")
# The media server (telephony/media/, ``manage.py mediaserver``): its control address, its RTP
# ports, and the directory of prompts, music on hold and voicemail (Django's MEDIA_ROOT too).
MEDIA_CONTROL = env("PBX_MEDIA_CONTROL", "127.0.0.1:2230")  # "" = no media features
MEDIA_RTP_HOST = env("PBX_MEDIA_RTP_HOST", "127.0.0.1")
MEDIA_RTP_PORT_MIN = env_int("PBX_MEDIA_RTP_PORT_MIN", 20000)
MEDIA_RTP_PORT_MAX = env_int("PBX_MEDIA_RTP_PORT_MAX", 29999)
# Call recordings (audio/recordings.py, audio/storage.py, audio/tasks.py). The engine's raw
# recordings (rtpengine's --recording-dir, the media server's) are accepted only from these
# directories; the conversion writes its WAV and MP3 in the work directory until the upload
# is confirmed. The provider's default storage of tenants that have none of their own:
# local (MEDIA_ROOT/recordings or PBX_RECORDING_LOCAL_DIR), s3 (any S3-compatible endpoint)
# or azure (account name and key, or a connection string in the secret).
PBX_RECORDING_SOURCE_DIRS = [
    d for d in env("PBX_RECORDING_SOURCE_DIRS", str(VAR_DIR / "recordings")).split(",") if d.strip()
]
PBX_RECORDING_WORK_DIR = env("PBX_RECORDING_WORK_DIR", str(VAR_DIR / "recordings-work"))
_RECORDING_KIND = env("PBX_RECORDING_STORAGE", "local")
PBX_RECORDING_STORAGE = {
    "kind": _RECORDING_KIND,
    "location": env("PBX_RECORDING_LOCAL_DIR", ""),
    **(
        {
            "bucket": env("PBX_RECORDING_S3_BUCKET", ""),
            "region": env("PBX_RECORDING_S3_REGION", ""),
            "endpoint_url": env("PBX_RECORDING_S3_ENDPOINT_URL", ""),
            "access_key": env("PBX_RECORDING_S3_ACCESS_KEY", ""),
            "secret": env("PBX_RECORDING_S3_SECRET_KEY", ""),
            "prefix": env("PBX_RECORDING_S3_PREFIX", ""),
        }
        if _RECORDING_KIND == "s3"
        else {
            "bucket": env("PBX_RECORDING_AZURE_CONTAINER", ""),
            "endpoint_url": env("PBX_RECORDING_AZURE_ENDPOINT_URL", ""),
            "account_name": env("PBX_RECORDING_AZURE_ACCOUNT_NAME", ""),
            "secret": env("PBX_RECORDING_AZURE_ACCOUNT_KEY", "")
            or env("PBX_RECORDING_AZURE_CONNECTION_STRING", ""),
            "prefix": env("PBX_RECORDING_AZURE_PREFIX", ""),
        }
        if _RECORDING_KIND == "azure"
        else {}
    ),
}
SIP_NAT_PING_INTERVAL = float(env("PBX_SIP_NAT_PING_INTERVAL", "30"))  # OPTIONS to NATed UDP; 0 off
