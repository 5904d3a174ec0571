"""Test settings: production settings with the few things a test run cannot have.

DEBUG stays off so that tests see what production serves (no debug pages, CSP on).
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# The seeders and the benchmark are under test too.
os.environ.setdefault("DEVTOOLS", "1")

from console.settings import *  # noqa: F403
from console.settings import STORAGES

# The test client speaks plain HTTP and there is no collectstatic step in a test run.
SECURE_SSL_REDIRECT = False
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Hashing passwords properly is slow by design; tests do not need that.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
# No collectstatic in a test run: serve from the finders instead of warning about STATIC_ROOT.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
