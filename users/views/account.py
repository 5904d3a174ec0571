"""The signed-in person's own account: their second factors, and changing their password.

Django's `PasswordChangeView` saves the whole user row (`user.save()`), which would write back
every field as it was when the request started and could undo an edit another admin made to this
user in the meantime. This view changes the password through `services.user_set_password`, which
locks the row and writes only the password column.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from users import services
from users.services import factors, sessions
from users.views import signin
from users.views.common import needs_step_up, step_up_redirect


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        own_key = request.session.session_key
        user = services.user_set_password(
            user=request.user,
            password=form.cleaned_data["new_password1"],
            actor=request.user,
            request=request,
            except_key=own_key,
        )
        # Keeps this session valid (its hash is derived from the password, its key is new);
        # the others were ended by the service.
        update_session_auth_hash(request, user)
        sessions.session_rekeyed(old_key=own_key, new_key=request.session.session_key)
        return redirect("password_change_done")
    return render(request, "registration/password_change_form.html", {"form": form})


@require_GET
@login_required
def password_change_done(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/password_change_done.html")


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def own_factors(request: HttpRequest) -> HttpResponse:
    """One's own second factors: add an authenticator app or a passkey, new recovery codes.
    Changes ask for the second factor again when the last check is older than
    STEP_UP_SECONDS."""
    user = request.user
    here = reverse("account-factors")
    form = signin.CodeForm(request.POST or None)
    has_totp = factors.factor_summary(user)["totp"] > 0
    if request.method == "POST":
        if needs_step_up(request):
            return step_up_redirect(request, here)
        if request.POST.get("action") == "recovery-codes":
            request.session[signin.RECOVERY_CODES_ONCE] = factors.recovery_codes_renew(
                user=user, request=request
            )
            return redirect(f"{reverse('signin-recovery-codes')}?{urlencode({'next': here})}")
        device = factors.pending_totp(user)
        if not has_totp and device is not None and form.is_valid():
            if factors.totp_confirm(
                user=user, device=device, token=form.cleaned_data["code"], request=request
            ):
                messages.success(request, "Authenticator app added.")
                return redirect(here)
            form.add_error("code", "That code does not match. Type the code your app shows now.")
    context = {"form": form, "summary": factors.factor_summary(user)}
    context["passkeys"] = factors.passkeys_of(user)
    if not has_totp:
        device = factors.pending_totp(user)
        if device is None or request.method == "GET":
            device = factors.totp_start(user=user)
        context["qr"] = signin.qr_data_uri(device.config_url)
        secret = factors.totp_secret(device)
        context["secret_groups"] = [secret[i : i + 4] for i in range(0, len(secret), 4)]
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/own_factors.html", context, status=status)
