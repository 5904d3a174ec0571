"""The API tokens page: issue a token (shown once) and revoke any token (after a confirmation).

Tokens act as the user they were issued to, so this page issues them to the signed-in admin;
`manage.py issue_api_token EMAIL` issues one to any console user (e.g. an integration account).

Issuing is post/redirect/get: the POST issues the token, keeps its secret in the session and
redirects; the GET after it pops the secret and shows it once. Reloading that page shows the
list only and issues nothing (rendering the secret in the POST response made a reload post the
form again, issuing another live token). The secret sits in the session only between the
redirect and the next GET of the page.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from users import policy
from users.models import ApiToken
from users.services import tokens
from users.views.common import needs_step_up, require, step_up_redirect

TEMPLATE = "users/api_tokens.html"
# Session key of the token just issued: {"pk": ..., "secret": ...}, popped by the next GET.
NEW_TOKEN_KEY = "users.api_tokens.new_token"


def _context(request: HttpRequest, **extra) -> dict:
    return {
        "tokens": ApiToken.objects.select_related("user", "revoked_by").order_by(
            "revoked_at", "-created_at", "-id"
        ),
        "name_max_length": tokens.NAME_MAX_LENGTH,
        **extra,
    }


def _pop_new_token(request: HttpRequest) -> dict:
    """The token issued by the POST before this GET and its secret, once; {} afterwards."""
    new = request.session.pop(NEW_TOKEN_KEY, None)
    if not isinstance(new, dict):
        return {}
    token = ApiToken.objects.filter(pk=new.get("pk"), user=request.user).first()
    if token is None or not new.get("secret"):
        return {}
    return {"new_token": token, "secret": new["secret"]}


@never_cache  # the page that shows a new secret must never be stored by a browser or proxy
@require_http_methods(["GET", "POST"])
@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    require(policy.may_manage_tokens(request.user))
    if request.method == "GET":
        context = _context(request, **_pop_new_token(request))
        context.setdefault("name", request.GET.get("name", "")[:100])
        return render(request, TEMPLATE, context)
    name = request.POST.get("name", "")
    if needs_step_up(request):
        # Back to this page with the typed name, once the second factor is checked again.
        back = f"{reverse('users:api-tokens')}?{urlencode({'name': name[:100]})}"
        return step_up_redirect(request, back)
    try:
        token, secret = tokens.issue_token(user=request.user, name=name)
    except ValidationError as exc:
        errors = [message for messages_ in exc.message_dict.values() for message in messages_]
        return render(request, TEMPLATE, _context(request, errors=errors, name=name), status=422)
    request.session[NEW_TOKEN_KEY] = {"pk": token.pk, "secret": secret}
    return redirect("users:api-tokens")


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks "Revoke token X?" (a plain form, no JavaScript needed); POST revokes."""
    require(policy.may_manage_tokens(request.user))
    token = get_object_or_404(ApiToken.objects.select_related("user"), pk=pk)
    if request.method == "GET":
        if not token.is_active:
            messages.info(request, f"Token “{token.name}” was already revoked.")
            return redirect("users:api-tokens")
        return render(request, TEMPLATE, _context(request, confirm_revoke=token))
    was_active = token.is_active
    tokens.revoke_token(token=token, actor=request.user)
    if was_active:
        messages.success(request, f"Token “{token.name}” ({token.prefix}…) is revoked.")
    else:
        messages.info(request, f"Token “{token.name}” was already revoked.")
    return redirect("users:api-tokens")
