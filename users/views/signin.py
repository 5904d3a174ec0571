"""Signing in: the password, then the second factor (a code from an authenticator app, a
recovery code or a passkey), or the enrolment of a first factor for a user without one.

After the password the person is signed in but not *verified* (django-otp); the
`SecondFactorMiddleware` lets such a session reach only these pages. The time of the last
second-factor check is kept in the session: sensitive actions ask for it again when it is older
than `STEP_UP_SECONDS` (`common.step_up_required`).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import segno
from django import forms
from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp_webauthn import views as webauthn_views

from users.selectors.security import address_is_locked
from users.services import factors, sessions
from users.services.security import Kind, security_event
from users.views.common import FACTOR_VERIFIED_AT

NEUTRAL_REFUSAL = (
    "That email and password do not open the console, or sign-in is paused after too many "
    "attempts. Check both and try again later; an admin can help."
)
RECOVERY_CODES_ONCE = "recovery_codes_once"


class SignInForm(AuthenticationForm):
    """The password step. Every refusal (unknown address, wrong password, no console access,
    a locked account or address) reads the same, so the form tells nothing about accounts."""

    error_messages = {"invalid_login": NEUTRAL_REFUSAL, "inactive": NEUTRAL_REFUSAL}

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        if address_is_locked(self.request.META.get("REMOTE_ADDR")):
            security_event(
                kind=Kind.SIGN_IN_FAILED,
                request=self.request,
                username=username,
                detail={"reason": "address_locked"},
            )
            raise self.get_invalid_login_error()
        try:
            return super().clean()
        except ValidationError:
            locked = getattr(self.request, "axes_locked_out", False)
            security_event(
                kind=Kind.LOCKED_OUT if locked else Kind.SIGN_IN_FAILED,
                request=self.request,
                username=username,
                detail={"failures": getattr(self.request, "axes_failures_since_start", None)},
            )
            raise


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        strip=True,
        error_messages={"required": "Enter the 6-digit code from your app or a recovery code."},
    )


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


def _with_next(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({'next': next_url})}"


def mark_verified(request: HttpRequest, device, *, how: str) -> None:
    """The session passed its second factor now: django-otp's mark, the time for step-up,
    a new session key at the first check (the password step already made one), and the log."""
    first = not request.user.is_verified()
    otp_login(request, device)
    request.session[FACTOR_VERIFIED_AT] = time.time()
    if first:
        request.session.cycle_key()
        sessions.session_start(request=request)
    security_event(
        kind=Kind.SIGN_IN if first else Kind.STEP_UP,
        request=request,
        actor=request.user,
        subject=request.user,
        detail={"factor": how},
    )


class SignInView(auth_views.LoginView):
    """The password step; then to the second factor, or to enrolment for a user without one."""

    form_class = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form: SignInForm) -> HttpResponse:
        user = form.get_user()
        auth_login(self.request, user)
        next_url = self.get_success_url()
        if not settings.CONSOLE_MFA_REQUIRED:
            sessions.session_start(request=self.request)
            security_event(
                kind=Kind.SIGN_IN,
                request=self.request,
                actor=user,
                subject=user,
                detail={"factor": None},
            )
            return HttpResponseRedirect(next_url)
        step = "signin-verify" if factors.has_factor(user) else "signin-enrol"
        return HttpResponseRedirect(_with_next(step, next_url))


sign_in = sensitive_post_parameters("password")(SignInView.as_view())


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def verify(request: HttpRequest) -> HttpResponse:
    """The second factor: at sign-in, or again before a sensitive action (`step_up=1`)."""
    user = request.user
    next_url = _next_url(request)
    step_up = request.user.is_verified()
    if not factors.has_factor(user):
        return redirect(_with_next("signin-enrol", next_url))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        check = factors.verify_code(user=user, code=form.cleaned_data["code"], request=request)
        device = check.device
        if device is not None:
            how = "recovery_code" if isinstance(device, StaticDevice) else "totp"
            mark_verified(request, device, how=how)
            return HttpResponseRedirect(next_url)
        if check.wait_seconds:
            form.add_error(
                "code",
                f"Too many wrong codes in a row: wait {check.wait_seconds} seconds, then type "
                "the code your app shows then.",
            )
        else:
            form.add_error("code", "That code is not right, or it was used already.")
    summary = factors.factor_summary(user)
    return render(
        request,
        "registration/verify.html",
        {"form": form, "next": next_url, "step_up": step_up, "factors": summary},
        status=200 if request.method == "GET" or form.is_valid() else 400,
    )


def qr_data_uri(text: str) -> str:
    return segno.make(text, error="m").svg_data_uri(scale=4, border=2, dark="#111827")


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def enrol(request: HttpRequest) -> HttpResponse:
    """A first factor for a user without one: an authenticator app (scan, then type a code)
    or a passkey. Recovery codes come with either, shown once."""
    user = request.user
    next_url = _next_url(request)
    if factors.has_factor(user):
        return redirect(_with_next("signin-verify", next_url))
    device = factors.pending_totp(user)
    if device is None or request.method == "GET":
        device = factors.totp_start(user=user) if device is None or "new" in request.GET else device
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = factors.totp_confirm(
            user=user, device=device, token=form.cleaned_data["code"], request=request
        )
        if codes is not None:
            mark_verified(request, device, how="totp")
            request.session[RECOVERY_CODES_ONCE] = codes
            return redirect(_with_next("signin-recovery-codes", next_url))
        form.add_error("code", "That code does not match. Type the code your app shows now.")
    secret = factors.totp_secret(device)
    return render(
        request,
        "registration/enrol.html",
        {
            "form": form,
            "next": next_url,
            "qr": qr_data_uri(device.config_url),
            "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
        },
        status=200 if request.method == "GET" else 400,
    )


@never_cache
@require_http_methods(["GET"])
@login_required
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """The new recovery codes, shown once after enrolment (a reload shows them no more)."""
    codes = request.session.pop(RECOVERY_CODES_ONCE, None)
    next_url = _next_url(request)
    if not codes:
        return HttpResponseRedirect(next_url)
    return render(request, "registration/recovery_codes.html", {"codes": codes, "next": next_url})


class PasskeySignIn(webauthn_views.CompleteCredentialAuthenticationView):
    """django-otp-webauthn's passkey check, also marking the time and writing the log."""

    def complete_auth(self, device):
        user = super().complete_auth(device)
        # super() already marked the session verified; mark_verified needs to know whether
        # this was the first check, which the time stamp tells.
        first = FACTOR_VERIFIED_AT not in self.request.session
        self.request.session[FACTOR_VERIFIED_AT] = time.time()
        if first:
            self.request.session.cycle_key()
        security_event(
            kind=Kind.SIGN_IN if first else Kind.STEP_UP,
            request=self.request,
            actor=user,
            subject=user,
            detail={"factor": "passkey"},
        )
        return user


class PasskeyEnrol(webauthn_views.CompleteCredentialRegistrationView):
    """django-otp-webauthn's passkey registration; the first factor of a user also gets
    recovery codes, shown once on the next page."""

    def post(self, *args, **kwargs):
        first_factor = not factors.has_factor(self.request.user)
        response = super().post(*args, **kwargs)
        user = self.request.user
        self.request.session.setdefault(FACTOR_VERIFIED_AT, time.time())
        if first_factor:
            self.request.session.cycle_key()
            self.request.session[RECOVERY_CODES_ONCE] = factors.recovery_codes_renew(
                user=user, request=self.request
            )
        security_event(
            kind=Kind.FACTOR_ENROLLED,
            request=self.request,
            actor=user,
            subject=user,
            detail={"factor": "passkey"},
        )
        return response
