"""Settings, read from the environment so that one codebase serves dev, CI and production.

DEBUG defaults to off: a forgotten variable must never expose a debug page in production.
The local commands (`make run`, `make test`) set DEBUG=1 and a throwaway SECRET_KEY themselves.
"""

import datetime as dt
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-never-used-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# A refused CSRF token says the session ended (and how to sign in again), not "no permission".
CSRF_FAILURE_VIEW = "users.views.errors.csrf_failure"

INSTALLED_APPS = [
    # django.contrib.admin with the console's site (console/admin_site.py): admins only.
    "console.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_filters",
    "django_htmx",
    # Serves django-ninja's bundled Swagger UI from our own static files (no CDN; CSP-safe).
    "ninja",
    # The second factor (issue "staff sign-in"): django-otp's TOTP and static (recovery code)
    # devices and django-otp-webauthn's passkeys; django-axes counts failed sign-ins.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "axes",
    "pgtrigger",
    "users",
]
# Seeders and the benchmark (console/devtools/): development and CI only.
DEVTOOLS = DEBUG or env_bool("DEVTOOLS")
if DEVTOOLS:
    INSTALLED_APPS.append("console.devtools")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed the second factor.
    "django_otp.middleware.OTPMiddleware",
    # Signed in with a password only: to the second-factor step (or enrolment), nowhere else.
    "console.middleware.SecondFactorMiddleware",
    # htmx without a valid session: 401 + HX-Redirect to sign in, back to the current page.
    "console.middleware.SessionEndedMiddleware",
    # A session idle longer than SESSION_IDLE_SECONDS ends (background requests do not count).
    "console.middleware.IdleTimeoutMiddleware",
    "console.middleware.NoStoreMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the neutral refusal.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

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
                "django.template.context_processors.csp",
                "console.context_processors.roles",
            ],
        },
    },
]

# SQLite by default so that the first run needs nothing installed; DATABASE_URL selects
# PostgreSQL (postgres://user@host:5432/name) in CI and production.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if not DATABASE_URL:
    # The embedded default: var/ is gitignored, so a fresh clone has to make it.
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASE_URL = f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the dev server and a management command share the file.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = [
    # First, as django-axes asks: refuses every sign-in of a locked-out account or address.
    "axes.backends.AxesStandaloneBackend",
    "console.auth.ConsoleBackend",
]
# Argon2id first: a sign-in costs tens of milliseconds, not the 0.5-2 s of PBKDF2 at 1.5M
# iterations; older PBKDF2 hashes still verify and are rehashed with Argon2 at next sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "users:home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/Brussels")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Mail (console login invitations). In development messages are printed on the console; in
# production SMTP is configured with EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER,
# EMAIL_HOST_PASSWORD and EMAIL_USE_TLS (or another EMAIL_BACKEND).
_EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
MAILERS = {"default": {"BACKEND": _EMAIL_BACKEND}}
if _EMAIL_BACKEND.endswith("smtp.EmailBackend"):
    MAILERS["default"]["OPTIONS"] = {
        "host": os.environ.get("EMAIL_HOST", "localhost"),
        "port": int(os.environ.get("EMAIL_PORT", "25")),
        "username": os.environ.get("EMAIL_HOST_USER", ""),
        "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
        "use_tls": env_bool("EMAIL_USE_TLS"),
        "timeout": int(os.environ.get("EMAIL_TIMEOUT", "10")),
    }
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "console@localhost")

# Security. Cookies are secure whenever DEBUG is off; behind a TLS-terminating proxy set
# SECURE_PROXY_SSL_HEADER through USE_X_FORWARDED_PROTO=1.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600)))
# Idle timeout: a session without a person's request for this long ends (background polls do
# not count). Besides the absolute SESSION_COOKIE_AGE.
SESSION_IDLE_SECONDS = int(os.environ.get("SESSION_IDLE_SECONDS", "900"))
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("USE_X_FORWARDED_PROTO"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# No inline script or style anywhere: behaviour and looks live in files under static/.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Staff sign-in (README "Sign-in policy").
# Every console sign-in needs a second factor (TOTP with recovery codes, or a passkey); only
# setting CONSOLE_MFA_REQUIRED=0 switches it off.
CONSOLE_MFA_REQUIRED = env_bool("CONSOLE_MFA_REQUIRED", True)
# Sensitive actions (tokens, roles, factor resets, ...) ask for the second factor again when the
# last check is older than this.
STEP_UP_SECONDS = int(os.environ.get("STEP_UP_SECONDS", "300"))
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "User console")
# Passkeys belong to a domain (the relying party) and are accepted from these origins only;
# by default the first of ALLOWED_HOSTS over https (and http://localhost:PORT in development:
# browsers accept passkeys on localhost, never on an IP address).
_hosts = [host for host in ALLOWED_HOSTS if host and "*" not in host and not host.startswith(".")]
OTP_WEBAUTHN_RP_ID = os.environ.get(
    "OTP_WEBAUTHN_RP_ID", "localhost" if DEBUG else (_hosts[0] if _hosts else "")
)
OTP_WEBAUTHN_ALLOWED_ORIGINS = env_list(
    "OTP_WEBAUTHN_ALLOWED_ORIGINS",
    ",".join(
        [f"http://localhost:{os.environ.get('PORT', '8000')}"]
        if DEBUG
        else [f"https://{host}" for host in _hosts if host == OTP_WEBAUTHN_RP_ID]
    ),
)
OTP_WEBAUTHN_RP_NAME = os.environ.get("OTP_WEBAUTHN_RP_NAME", "User console")
# Passkeys are a second factor after the password, never a way around it.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
# Throttling (django-axes): 5 failures for one account from any address lock that account,
# 20 failures from one address lock that address (console.auth.address_is_locked), for 15
# minutes, with the same neutral message as a wrong password.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
SIGN_IN_ADDRESS_FAILURE_LIMIT = int(os.environ.get("SIGN_IN_ADDRESS_FAILURE_LIMIT", "20"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "console.auth.axes_username"
AXES_RESET_ON_SUCCESS = True
# A lockout lasts 15 minutes from the lockout: attempts while locked do not extend it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_LOCKOUT_CALLABLE = "console.auth.lockout_response"
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = False


# Product settings.
# The onboarding SLA (users/sla.py): a target in business hours (weekday hours, console time
# zone) per status, as STATUS=HOURS pairs; a status not named has none. Cards past SLA_AT_RISK of
# their target are marked at risk, past the target breached. The status names are checked by
# users.sla's system check.
def sla_targets(text: str) -> dict[str, float]:
    targets: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        status, _, hours = item.partition("=")
        try:
            value = float(hours)
        except ValueError:
            value = 0.0
        if not status.strip() or value <= 0:
            raise ImproperlyConfigured(
                f"SLA_TARGET_HOURS: {item!r} is not STATUS=HOURS with HOURS above 0."
            )
        targets[status.strip().upper()] = value
    return targets


SLA_TARGET_HOURS = sla_targets(
    os.environ.get("SLA_TARGET_HOURS", "WAITING_FOR_VERIFICATION=48,VERIFICATION_FAILED=24")
)
SLA_AT_RISK = 0.75
# Four-eyes approval (README "Four-eyes approval"): the kinds of change that wait for a second
# person (any of `counter_account`, `roles`, `console_flag`; empty: none), and how many hours a
# proposal waits before it expires.
FOUR_EYES_GUARDED = env_list("FOUR_EYES_GUARDED", "counter_account,roles,console_flag")
FOUR_EYES_TTL_HOURS = int(os.environ.get("FOUR_EYES_TTL_HOURS", "72"))
# The region a national phone number typed in the list's search is read in (ISO 3166 alpha-2),
# unless a residency country is filtered on; empty: every region the number is valid in.
DEFAULT_PHONE_REGION = os.environ.get("DEFAULT_PHONE_REGION", "BE").strip().upper()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # A 403 is an expected answer: its one line, without the PermissionDenied traceback.
    "filters": {
        "forbidden_without_traceback": {"()": "console.log_filters.ForbiddenWithoutTraceback"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        # Django's default config gives "django" a console handler of its own (with DEBUG) and
        # lets it propagate to the root's too, which printed every line twice; the root's
        # handler alone prints it. (Its mail_admins handler goes too: there are no ADMINS.)
        "django": {"handlers": []},
        "django.request": {"filters": ["forbidden_without_traceback"]},
        # Failures and lockouts are in the security log; django-axes' own lines are warnings.
        "axes": {"level": "WARNING"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# django-axes warns that it does not lock addresses: the console does, with its own limit of
# failures per address (SIGN_IN_ADDRESS_FAILURE_LIMIT, users/selectors/security.py).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
