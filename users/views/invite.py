"""Accepting a console login invitation (API `create_idp_user=true`): choose a password.

The link carries Django's password-reset token, which is bound to the current password hash:
it stops working once a password is set, and after PASSWORD_RESET_TIMEOUT.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.tokens import default_token_generator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from users import services
from users.models import User
from users.policy import can_use_console

TEMPLATE = "users/invite_accept.html"


def _invited_user(uidb64: str, token: str) -> User | None:
    try:
        pk = force_str(urlsafe_base64_decode(uidb64))
    except (TypeError, ValueError, OverflowError):
        return None
    user = User.objects.filter(pk=pk, deleted=False).first()
    if user is None or not default_token_generator.check_token(user, token):
        return None
    return user


@sensitive_post_parameters("new_password1", "new_password2")
@never_cache
@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    user = _invited_user(uidb64, token)
    if user is None:
        return render(request, TEMPLATE, {"invalid": True}, status=404)
    form = SetPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.user_set_password(user=user, password=form.cleaned_data["new_password1"])
        if can_use_console(user):
            messages.success(request, "Your password is set. Sign in with your email address.")
            return redirect("login")
        return render(request, TEMPLATE, {"done": True, "subject": user})
    return render(request, TEMPLATE, {"form": form, "subject": user})
