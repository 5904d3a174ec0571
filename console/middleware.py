"""Request middleware of the console: the second-factor gate, the no-store header, the idle
timeout, and the answer htmx gets when the session has ended.

Order (settings.MIDDLEWARE): after django-otp's OTPMiddleware, which gives `request.user`
its `is_verified()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from users.services import sessions
from users.services.factors import has_factor
from users.views.common import current_page, sign_in_again_url

# Where a person signed in with a password only may go: the second-factor steps themselves,
# their passkey ceremonies, signing out, and the files those pages load.
OPEN_PREFIXES = ("/login/", "/logout/", "/webauthn/", "/static/", "/favicon.ico")


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def to_sign_in(request: HttpRequest, target: str) -> HttpResponse:
    """Off to a sign-in step: htmx gets a 401 with `HX-Redirect` (a redirect would swap the
    sign-in page into the region that asked); a plain request a redirect."""
    if is_htmx(request):
        response = HttpResponse(status=401)
        response["HX-Redirect"] = target
        return response
    return HttpResponseRedirect(target)


class SecondFactorMiddleware:
    """A session that passed the password but not the second factor reaches only the
    second-factor step (or, for a user without a factor, the enrolment); every other page
    sends it there, and an htmx request gets a 401 with `HX-Redirect`, which htmx follows
    as a full page load instead of swapping a sign-in page into a region."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            settings.CONSOLE_MFA_REQUIRED
            and user.is_authenticated
            and not user.is_verified()
            and not request.path.startswith(OPEN_PREFIXES)
            and not request.path.startswith("/api/")
        ):
            step = "signin-verify" if has_factor(user) else "signin-enrol"
            # For htmx, back to the page it came from, not to the region's URL.
            back = (current_page(request) or "/") if is_htmx(request) else request.get_full_path()
            return to_sign_in(request, f"{reverse(step)}?{urlencode({'next': back})}")
        return self.get_response(request)


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every page of a signed-in person and every API answer:
    no browser or proxy keeps a copy of personal data (ASVS 14.3.2)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if request.path.startswith("/api/") or (user is not None and user.is_authenticated):
            add_never_cache_headers(response)
        return response


class SessionEndedMiddleware:
    """An htmx request without a valid session (never signed in, session expired or deleted,
    cookie removed, access taken away) gets a 401 with `HX-Redirect` to the sign-in page
    instead of the sign-in page swapped into a region. Its `next` is the page the person was
    on (htmx's `HX-Current-URL`, same host only), not the region's URL, so signing in again
    leads back there (where static/console/keep.js puts typed input back)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            is_htmx(request)
            and isinstance(response, HttpResponseRedirect)
            and urlsplit(response["Location"]).path == resolve_url(settings.LOGIN_URL)
        ):
            return to_sign_in(request, sign_in_again_url(request))
        return response


# The header htmx sends from background requests (polls, refreshes a person did not ask for,
# through `hx-headers`): they do not count as activity for the idle timeout.
BACKGROUND_HEADER = "X-Console-Background"


class IdleTimeoutMiddleware:
    """The idle timeout (`SESSION_IDLE_SECONDS`) besides the absolute `SESSION_COOKIE_AGE`:
    the session keeps the time of the person's last request; one idle longer than the timeout
    is ended (flushed, its record marked ended) and the request goes to the sign-in page (an
    htmx request gets a 401 with `HX-Redirect`). Background requests do not move the time on;
    `last_seen` of the session's record is written at most once a minute."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not hasattr(request, "session"):
            return self.get_response(request)
        now = time.time()
        left = sessions.idle_seconds_left(request, now=now)
        if left is not None and left < 0:
            sessions.session_end_current(request=request, reason="idle")
            if request.path == reverse("login"):
                # Already on its way to sign in (session.js sends it there): let it.
                return self.get_response(request)
            if is_htmx(request):
                return to_sign_in(request, sign_in_again_url(request))
            return to_sign_in(
                request, f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}"
            )
        background = request.headers.get(BACKGROUND_HEADER) == "1"
        signed_in = not settings.CONSOLE_MFA_REQUIRED or user.is_verified()
        sessions.session_touch(request=request, active=not background, signed_in=signed_in, now=now)
        return self.get_response(request)
