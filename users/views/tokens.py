"""The API tokens page: issue a token (shown once) and revoke any token.

Tokens act as the user they were issued to, so this page issues them to the signed-in admin;
`manage.py issue_api_token EMAIL` issues one to any console user (e.g. an integration account).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from users import policy
from users.models import ApiToken
from users.services import tokens
from users.views.common import require

TEMPLATE = "users/api_tokens.html"


def _context(request: HttpRequest, **extra) -> dict:
    return {
        "tokens": ApiToken.objects.select_related("user", "revoked_by").order_by(
            "revoked_at", "-created_at", "-id"
        ),
        "name_max_length": tokens.NAME_MAX_LENGTH,
        **extra,
    }


@never_cache  # the page that shows a new secret must never be stored by a browser or proxy
@require_http_methods(["GET", "POST"])
@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    require(policy.may_manage_tokens(request.user))
    if request.method == "GET":
        return render(request, TEMPLATE, _context(request))
    name = request.POST.get("name", "")
    try:
        token, secret = tokens.issue_token(user=request.user, name=name)
    except ValidationError as exc:
        errors = [message for messages_ in exc.message_dict.values() for message in messages_]
        return render(request, TEMPLATE, _context(request, errors=errors, name=name), status=422)
    # Rendered, not redirected: the secret exists only in this response.
    return render(request, TEMPLATE, _context(request, new_token=token, secret=secret))


@require_POST
@login_required
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    require(policy.may_manage_tokens(request.user))
    token = get_object_or_404(ApiToken, pk=pk)
    was_active = token.is_active
    tokens.revoke_token(token=token, actor=request.user)
    if was_active:
        messages.success(request, f"Token “{token.name}” ({token.prefix}…) is revoked.")
    else:
        messages.info(request, f"Token “{token.name}” was already revoked.")
    return redirect("users:api-tokens")
