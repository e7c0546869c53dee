"""hookrunner settings. Every value comes from the environment (or `.env`); see README."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from runner.config.env import env_bool, env_float, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env", override=False)

# Local state of the embedded setup: SQLite database and the generated secrets.
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG")
SECRET_KEY_FILE = DATA_DIR / "django-secret-key"
SECRET_KEY = env_secret("DJANGO_SECRET_KEY", SECRET_KEY_FILE)

WEBHOOK_SECRET_FILE = DATA_DIR / "webhook-secret"
WEBHOOK_SECRET = env_secret("WEBHOOK_SECRET", WEBHOOK_SECRET_FILE)
WEBHOOK_PATH = env_str("WEBHOOK_PATH", "hooks/github/").strip("/") + "/"
PIPELINES_FILE = Path(env_str("PIPELINES_FILE", str(BASE_DIR / "pipelines.yaml")))
# How often, at most, a process looks whether PIPELINES_FILE changed (one stat call).
PIPELINES_CHECK_SECONDS = env_float("PIPELINES_CHECK_SECONDS", 1)

# GitHub caps payloads at 25 MB; a body above this is refused unread.
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 25 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = WEBHOOK_MAX_BODY_BYTES
# Rejected requests stored per minute, over all processes; the rest are only counted.
REJECTIONS_STORED_PER_MINUTE = env_int("REJECTIONS_STORED_PER_MINUTE", 60)
# ...and at most this many are kept, the oldest deleted first.
REJECTIONS_KEPT = env_int("REJECTIONS_KEPT", 10000)

# `manage.py purge` (the systemd timer runs it daily), in days: deliveries without a kept
# run, refused requests, finished tasks and silent workers go after DELIVERY_RETENTION;
# finished runs with their output (and then their deliveries) after RUN_RETENTION.
DELIVERY_RETENTION = env_int("DELIVERY_RETENTION", 7)
RUN_RETENTION = env_int("RUN_RETENTION", 90)

# Running pipelines.
WORKSPACES_DIR = Path(env_str("WORKSPACES_DIR", str(DATA_DIR / "workspaces")))
# `checkout: true` keeps one bare mirror per repository here; runs fetch into it.
MIRRORS_DIR = Path(env_str("MIRRORS_DIR", str(DATA_DIR / "mirrors")))
# Bytes of output stored per step: past it, the head and the tail are kept.
STEP_OUTPUT_LIMIT = env_int("STEP_OUTPUT_LIMIT", 10 * 1024 * 1024)
# Steps and git run in a bubblewrap sandbox (docs/sandbox.md): the bwrap program, and
# paths it hides besides hookrunner's own folders (comma-separated; an env file kept
# outside PIPELINES_FILE's folder, say).
BWRAP = env_str("BWRAP", "bwrap")
SANDBOX_HIDDEN_PATHS = env_list("SANDBOX_HIDDEN_PATHS", [])
# Between SIGTERM and SIGKILL when a step times out.
STEP_KILL_GRACE_SECONDS = env_float("STEP_KILL_GRACE_SECONDS", 5)
# A worker told to stop (SIGTERM, Ctrl-C) lets its running step go on this long, then
# cancels it; a second signal cancels at once.
WORKER_STOP_GRACE_SECONDS = env_float("WORKER_STOP_GRACE_SECONDS", 10)
# A running run's worker says it is alive this often; silent for RUN_STALE_SECONDS, it is
# taken for dead and its run marked error (worker lost). Workers look every REAP_SECONDS.
RUN_HEARTBEAT_SECONDS = env_float("RUN_HEARTBEAT_SECONDS", 10)
RUN_STALE_SECONDS = env_float("RUN_STALE_SECONDS", 60)
REAP_SECONDS = env_float("REAP_SECONDS", 30)
# How often each worker records that it is alive (for /healthz).
WORKER_BEAT_SECONDS = env_float("WORKER_BEAT_SECONDS", 10)
# An idle worker is woken when work is queued (docs/scaling.md); should a wake-up be lost,
# it still looks for work this often. `manage.py worker --interval` overrides it.
WORKER_POLL_SECONDS = env_float("WORKER_POLL_SECONDS", 2)
# While the database does not answer, a worker lets the running step go on (its output
# waiting in memory) this long; then the run ends "error: database unavailable".
DATABASE_OUTAGE_SECONDS = env_float("DATABASE_OUTAGE_SECONDS", 120)

# Commit statuses and notifications (README, "Commit statuses and notifications").
# GitHub's API; GitHub Enterprise Server's is https://HOST/api/v3.
GITHUB_API_URL = env_str("GITHUB_API_URL", "https://api.github.com").rstrip("/")
# Where people reach hookrunner (https://ci.example.com): links to a run's page in commit
# statuses and notifications. Unset, they carry no link.
PUBLIC_URL = env_str("PUBLIC_URL").rstrip("/")
# The host names requests may carry: unset, this machine's loopback names and PUBLIC_URL's.
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS",
    ["127.0.0.1", "localhost", "[::1]", *filter(None, [urlsplit(PUBLIC_URL).hostname])],
)
# Each status or notification is tried up to OUTGOING_ATTEMPTS times on 5xx answers and
# network errors, OUTGOING_RETRY_SECONDS after the first failure, doubling (2, 4, 8, 16 s);
# a 4xx gives up at once. Waits GitHub's rate limits ask for do not count, up to
# OUTGOING_MAX_WAIT_SECONDS each. One request waits OUTGOING_TIMEOUT_SECONDS for its answer.
OUTGOING_ATTEMPTS = env_int("OUTGOING_ATTEMPTS", 5)
OUTGOING_RETRY_SECONDS = env_float("OUTGOING_RETRY_SECONDS", 2)
OUTGOING_MAX_WAIT_SECONDS = env_float("OUTGOING_MAX_WAIT_SECONDS", 900)
OUTGOING_TIMEOUT_SECONDS = env_float("OUTGOING_TIMEOUT_SECONDS", 10)

# Monitoring (README, "Monitoring"). GET /metrics for Prometheus: off (404) unless enabled;
# with METRICS_TOKEN (or METRICS_TOKEN_FILE) it needs "Authorization: Bearer <token>",
# without one it answers only loopback clients that came through no proxy.
METRICS_ENABLED = env_bool("METRICS_ENABLED")
METRICS_TOKEN = env_secret("METRICS_TOKEN")
# The run and step duration histograms count runs queued within this many seconds.
METRICS_WINDOW_SECONDS = env_float("METRICS_WINDOW_SECONDS", 24 * 3600)
# GET /healthz says "degraded" when no worker was seen for this long, or a queued run has
# waited longer than HEALTH_QUEUE_AGE_SECONDS.
HEALTH_WORKER_SILENT_SECONDS = env_float("HEALTH_WORKER_SILENT_SECONDS", 3 * WORKER_BEAT_SECONDS)
HEALTH_QUEUE_AGE_SECONDS = env_float("HEALTH_QUEUE_AGE_SECONDS", 300)

INSTALLED_APPS = [
    # First, so its admin templates take precedence over Django's.
    "runner",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks_db",
    # Failed logins and lockouts, kept in the same database and shown in admin (AXES_*).
    "axes",
]

MIDDLEWARE = [
    # First: it answers a request for a host not in ALLOWED_HOSTS, and says so.
    "runner.receiver.hosts.RefusedHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

# axes' backend first: it refuses a locked-out login before any password is checked, and
# only that (ModelBackend checks passwords and permissions). authenticate() needs the
# request then: in tests client.force_login works as before, client.login needs
# request=HttpRequest().
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Admin login throttling (docs/admin.md, "Locked out"), by django-axes in the database.
# LOGIN_FAILURE_LIMIT failed logins of one username from one address lock that pair out
# for LOGIN_COOLOFF_MINUTES from the failure that locked it: every login of the pair is
# refused meanwhile, the right password too, and refused ones neither count nor extend it.
# Only the pair: an address guessing passwords locks out the names it guesses, from
# itself, not everyone.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
_cooloff_minutes = env_int("LOGIN_COOLOFF_MINUTES", 15)
if AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured(f"LOGIN_FAILURE_LIMIT={AXES_FAILURE_LIMIT} must be 1 or more")
if _cooloff_minutes < 1:
    raise ImproperlyConfigured(f"LOGIN_COOLOFF_MINUTES={_cooloff_minutes} must be 1 or more")
AXES_COOLOFF_TIME = timedelta(minutes=_cooloff_minutes)
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A successful login forgets the pair's earlier failures.
AXES_RESET_ON_SUCCESS = True
# The address is the one Django sees, REMOTE_ADDR, never X-Forwarded-For: gunicorn believes
# a proxy (FORWARDED_ALLOW_IPS) about X-Forwarded-Proto only. So behind a proxy every login
# comes from the proxy's address, and the lockout is in effect per username.
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
# The 429 page of a locked-out login.
AXES_COOLOFF_MESSAGE = (
    "Too many failed logins: this username is locked out from this address for "
    f"{_cooloff_minutes} minute{'s' if _cooloff_minutes > 1 else ''} after the failure that "
    "locked it. Logins meanwhile are refused, even with the right password, and do not "
    "extend it. An administrator can unlock it sooner."
)

ROOT_URLCONF = "runner.urls"
WSGI_APPLICATION = "runner.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "runner.admin.context_processors.pipelines_status",
                "runner.admin.context_processors.sandbox_status",
            ],
        },
    },
]


def database_from_url(url: str) -> dict:
    try:
        database = dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True)
    except ValueError:
        # Not the URL, which holds the password, nor dj_database_url's words, which
        # suggest registering a backend.
        raise ImproperlyConfigured(
            "DATABASE_URL is not a database URL: use postgres://USER:PASSWORD@HOST:PORT/NAME "
            "(with the password's special characters %-quoted) or sqlite:////PATH"
        ) from None
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # Measured: without these a receiver and a worker writing at once hit
        # "database is locked"; keeping connections saves the WAL checkpoint per request.
        # Every commit of another connection (another thread's, another process's) empties
        # a connection's page cache; read through a memory map, those pages come from the
        # kernel's cache without a copy (bench/README.md, issue 17). SQLite writes with
        # write(), not through the map: a full disk is still an error, not a signal.
        database["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": env_float("SQLITE_LOCK_TIMEOUT", 20),
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA mmap_size=1073741824;"
            ),
        }
        database["TEST"] = {"NAME": env_str("TEST_SQLITE_NAME") or None}
    return database


DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'hookrunner.sqlite3'}")
    )
}
if not env_str("DATABASE_URL"):
    # SQLite creates its file but not the folder; a fresh checkout has no var/ yet.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Any queue name: pipelines choose theirs with runs_on.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# WhiteNoise serves admin's files from where they are installed, too: `make run` need not
# start Django once more to copy them first (collectstatic; the web unit still runs it).
WHITENOISE_USE_FINDERS = True

# Taken in either case; logging itself knows only the upper-case names.
_log_level = env_str("LOG_LEVEL", "INFO")
if _log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL={_log_level!r} is not a log level (DEBUG, INFO, WARNING, ERROR)"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            # One line per record whatever a delivery carries (control characters in
            # logged values escaped), and each request error with its delivery id.
            "class": "runner.ops.logs.SafeFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "runner": {"handlers": ["console"], "level": _log_level.upper()},
        # Django logs a view's unhandled error (its 500, with the traceback) only here, and
        # writes it itself only with DEBUG on; its 4xx warnings are left out.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        # Admin logins locked out (usernames and addresses masked by axes itself).
        "axes": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
