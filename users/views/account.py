"""The signed-in person's own account: changing their password.

Django's `PasswordChangeView` saves the whole user row (`user.save()`), which would write back
every field as it was when the request started and could undo an edit another admin made to this
user in the meantime. This view changes the password through `services.user_set_password`, which
locks the row and writes only the password column.
"""

from __future__ import annotations

from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from users import services


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.user_set_password(
            user=request.user, password=form.cleaned_data["new_password1"]
        )
        # Keeps this session valid (its hash is derived from the password); others end.
        update_session_auth_hash(request, user)
        return redirect("password_change_done")
    return render(request, "registration/password_change_form.html", {"form": form})


@require_GET
@login_required
def password_change_done(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/password_change_done.html")
