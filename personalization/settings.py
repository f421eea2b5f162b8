"""Settings, read from the environment.

With no environment at all this is the embedded default: SQLite under ``var/``, Celery tasks run
eagerly in-process, the cache in process memory and email written to files under ``var/mail``.
``DATABASE_URL`` switches to PostgreSQL and ``REDIS_URL`` to Redis as Celery broker and cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from personalization import queues
from personalization.env import envbool, envfloat, envint, envlist, envstr

# One thread each for BLAS, OpenMP (LightGBM, faiss) in web and worker processes: the box has
# two cores and several processes; numerical libraries read these when first imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("DATA_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")

# Off unless asked for: `make demo` turns it on for the embedded demo on 127.0.0.1.
DEBUG = envbool("DEBUG", "False")


def _required_key(name: str, demo_value: str) -> str:
    """A signing key from the environment; only the debug demo may fall back to a local constant."""
    value = envstr(name)
    if value is not None:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off (see README, 'Running it for real')")
    return demo_value


SECRET_KEY = _required_key("SECRET_KEY", "insecure-embedded-demo-key-for-127.0.0.1-only")
# Tokens in emails (open pixel, click redirects, one-click unsubscribe) are signed with a key of their
# own, so either key can be rotated without the other. Old tracking keys listed in
# TRACKING_SECRET_KEYS_OLD still verify (not sign) during the grace period links in sent email need.
TRACKING_SECRET_KEY = _required_key("TRACKING_SECRET_KEY", "insecure-embedded-demo-tracking-key")
TRACKING_SECRET_KEYS_OLD = envlist("TRACKING_SECRET_KEYS_OLD")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

# HTTPS: on by default whenever DEBUG is off. A plain-HTTP deployment (a private network, or a proxy
# that does not terminate TLS) sets HTTPS=False; each setting below can also be set on its own.
HTTPS = envbool("HTTPS", "False" if DEBUG else "True")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", str(HTTPS))
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", str(HTTPS))
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", str(HTTPS))
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "31536000" if HTTPS else "0")
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", str(HTTPS))
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", str(HTTPS))
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (and strips it from clients).
if envbool("TRUST_X_FORWARDED_PROTO", "False"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Debug pages (the demo only) show no setting whose name speaks of a URL, host, key or password.
DEFAULT_EXCEPTION_REPORTER_FILTER = "personalization.error_pages.QuietExceptionReporterFilter"
SITE_URL = envstr("SITE_URL", "http://localhost:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "catalog",
    "profiles",
    "experiments",
    "personalization",
    "campaigns",
    "journeys",
]

MIDDLEWARE = [
    # Outermost, so that every error answer passes through it (personalization/error_pages.py).
    "personalization.error_pages.ErrorPagesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "personalization.chunked_requests.ChunkedRequestMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "personalization.console_settings.TimeZoneMiddleware",  # pages in each user's time zone
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "personalization.urls"
WSGI_APPLICATION = "personalization.wsgi.application"

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
                "personalization.model_pages.fit_alert",
            ],
        },
    },
]

DATABASE_URL = envstr("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", "60"))}
    DATABASES["default"].setdefault("TEST", {})["NAME"] = envstr("DATABASE_TEST_NAME")
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "db.sqlite3"),
            "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
        }
    }
    # SQLite keeps the serving index on (person, timestamp) without the columns PostgreSQL carries
    # in it (profiles.Event): a plain index, which is all the embedded default needs.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = envstr("REDIS_URL")
# The cache may live in another Redis database than the broker (tests flush the cache's).
CACHE_URL = envstr("CACHE_URL", REDIS_URL)
if CACHE_URL:
    # Resilient: while Redis cannot be reached each process caches in its own memory and answers on
    # (personalization/shared_cache.py); the timeouts bound what one attempt to reach it may cost.
    CACHES = {
        "default": {
            "BACKEND": "personalization.shared_cache.ResilientRedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": envstr("CACHE_KEY_PREFIX", "pe") or "pe",
            "TIMEOUT": 3600,
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 5.0},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(BASE_DIR / "staticfiles")) or BASE_DIR / "staticfiles")
LOGIN_URL = "login"  # the console's login, which lets in non-staff users such as CSMs

# Large enough for a batch of 500 events; the ingest view enforces its own, clearer limit first.
INGEST_MAX_BODY_BYTES = envint("INGEST_MAX_BODY_BYTES", str(4 * 1024 * 1024))
INGEST_MAX_BATCH = envint("INGEST_MAX_BATCH", "500")
INGEST_MAX_EVENT_BYTES = envint("INGEST_MAX_EVENT_BYTES", str(32 * 1024))
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES + 1024

# Consent that holds for a person who has never said anything about a purpose.
CONSENT_DEFAULTS = {
    "personalization": envbool("CONSENT_DEFAULT_PERSONALIZATION", "True"),
    "analytics": envbool("CONSENT_DEFAULT_ANALYTICS", "True"),
    "email_marketing": envbool("CONSENT_DEFAULT_EMAIL_MARKETING", "False"),
}
PROFILE_CACHE_SECONDS = envint("PROFILE_CACHE_SECONDS", "3600")
# Serving's copy of a person's consent, country and latest events in Redis (profiles.hot_profile):
# how long a copy lives after it was read from the database. 0 turns it off; without Redis there is none.
HOT_PROFILE_SECONDS = envint("HOT_PROFILE_SECONDS", "600")
PROFILE_HALF_LIFE_DAYS = envfloat("PROFILE_HALF_LIFE_DAYS", "90")
# Erasure receipts keep a salted hash of each erased key so that replayed events can be refused
# (profiles.erasure). Set ERASURE_SALT to keep recognising them across a SECRET_KEY rotation.
ERASURE_SALT = envstr("ERASURE_SALT") or f"erasure-receipt:{SECRET_KEY}"
# Events and impressions older than this are deleted by the daily retention job (profiles.retention);
# on PostgreSQL events go by whole month partitions, so a month stays until all of it is older.
RETENTION_MONTHS = envint("RETENTION_MONTHS", "24")
RETENTION_BATCH_ROWS = envint("RETENTION_BATCH_ROWS", "10000")
# PostgreSQL: the daily job keeps month partitions of the event log ready this many months ahead
# (profiles.partitions); an event no partition covers lands in the default partition.
EVENT_PARTITIONS_AHEAD = envint("EVENT_PARTITIONS_AHEAD", "3")

# Celery: JSON only, acknowledge after the work is done, bounded run time, beat from the database.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL and envbool("CELERY_EAGER", "True")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", "1800")
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", "1500")
# Training may run longer than the other tasks (personalization.tasks.train_engine).
TRAINING_TIME_LIMIT = envint("TRAINING_TIME_LIMIT", "3600")
# The engine's knobs for this deployment's fits, as JSON over personalization/engine/config.py's
# defaults, e.g. '{"ranker_trees": 100}' (a small shop or a simulation); unknown names are refused.
ENGINE_SETTINGS = envstr("ENGINE_SETTINGS", "")
# Redis hands an unacknowledged task to another worker after the visibility timeout: it must exceed
# every task's hard time limit, or a task still running is delivered twice (a test checks every task).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": max(CELERY_TASK_TIME_LIMIT, TRAINING_TIME_LIMIT) + 600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# A queue per kind of work (personalization/queues.py), so that a long training or a large campaign
# preparation never delays a send or a profile refresh; each queue gets workers of its own.
CELERY_TASK_QUEUES = queues.celery_queues()
CELERY_TASK_DEFAULT_QUEUE = queues.DEFAULT_QUEUE
CELERY_TASK_ROUTES = queues.celery_routes()
CELERY_TIMEZONE = TIME_ZONE

EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = DATA_DIR / "mail"
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", "25")
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "False")
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "news@example.com")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "personalization.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["personalization.api.permissions.HasScope"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_THROTTLE_CLASSES": ["personalization.api.throttling.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "principal": envstr("API_RATE_LIMIT", "6000/min"),
        "ingest": envstr("INGEST_RATE_LIMIT", "3000/min"),
    },
    "EXCEPTION_HANDLER": "personalization.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["personalization.api.parsers.BoundedJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Personalization engine API",
    "DESCRIPTION": "Events in, identities stitched, catalogue synced, recommendations out, consent recorded.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "ApiKey": {"type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer <key>`."},
        }
    },
    "SECURITY": [{"ApiKey": []}],
    # Choice sets that several fields named "kind" use: one component name each.
    "ENUM_NAME_OVERRIDES": {
        "SurfaceKindEnum": "personalization.models.SurfaceKind",
        "ItemKindEnum": "catalog.models.ItemKind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "personalization.api.schema_errors.document_errors",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Model artifacts (personalization/model_storage.py): "local" folders under MODEL_STORAGE_DIR (one
# machine, or a directory every machine mounts), "database" (PostgreSQL: every machine reads them) or
# "s3" (an S3-compatible object store through django-storages). Processes copy a version from a shared
# storage into MODEL_CACHE_DIR (default: a temporary directory of each process) and load it from there.
MODEL_STORAGE = envstr("MODEL_STORAGE", "local") or "local"
if MODEL_STORAGE not in ("local", "database", "s3"):
    raise ImproperlyConfigured(f"Unexpected value MODEL_STORAGE={MODEL_STORAGE}, use local, database or s3")
MODEL_STORAGE_DIR = Path(envstr("MODEL_STORAGE_DIR", str(DATA_DIR / "models")) or DATA_DIR / "models")
MODEL_CACHE_DIR = envstr("MODEL_CACHE_DIR")
MODEL_STORAGE_CHUNK_BYTES = envint("MODEL_STORAGE_CHUNK_BYTES", str(8 * 1024 * 1024))
if MODEL_STORAGE == "s3":
    _bucket = envstr("MODEL_STORAGE_BUCKET")
    if not _bucket:
        raise ImproperlyConfigured("MODEL_STORAGE=s3 needs MODEL_STORAGE_BUCKET")
    # Credentials come the usual boto3 way (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, a role).
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "model_artifacts": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": _bucket,
                "endpoint_url": envstr("MODEL_STORAGE_ENDPOINT_URL"),  # MinIO, Ceph, R2, ...; unset: AWS
                "region_name": envstr("MODEL_STORAGE_REGION"),
                "location": envstr("MODEL_STORAGE_PREFIX", "models") or "",
                "file_overwrite": True,
                "default_acl": None,
                "querystring_auth": False,
            },
        },
    }
