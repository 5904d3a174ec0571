"""Sessions: one's own (`/account/sessions/`) and, for admins, any user's
(`/users/<id>/sessions/`): started, last seen, address, browser, with "Sign out" per session;
and the idle warning's "Stay signed in" (`keep_alive`). Every form is a plain POST."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from users import policy
from users.models import User
from users.selectors.sessions import active_sessions, browser_label
from users.services import sessions
from users.views.common import require


def _rows(request: HttpRequest, user: User) -> list[dict]:
    own_key = request.session.session_key
    return [
        {
            "record": record,
            "browser": browser_label(record.user_agent),
            "current": record.session_key == own_key,
        }
        for record in active_sessions(user)
    ]


def _session_id(request: HttpRequest) -> int | None:
    raw = request.POST.get("session", "")
    return int(raw) if raw.isdigit() else None


@require_http_methods(["GET", "POST"])
@login_required
def own_sessions(request: HttpRequest) -> HttpResponse:
    """One's own sessions; POST `session=<id>` signs that one out (this one: signs out),
    `others=1` signs out every other."""
    user = request.user
    here = reverse("account-sessions")
    if request.method == "POST":
        own_key = request.session.session_key
        if request.POST.get("others") == "1":
            ended = sessions.end_sessions(
                user=user,
                actor=user,
                reason="signed_out_elsewhere",
                request=request,
                except_key=own_key,
                kind=sessions.Kind.SIGN_OUT,
            )
            messages.success(request, f"Signed out of {ended} other session(s).")
            return redirect(here)
        session_id = _session_id(request)
        record = active_sessions(user).filter(pk=session_id).first() if session_id else None
        if record is None:
            messages.error(request, "That session has already ended.")
            return redirect(here)
        if record.session_key == own_key:
            sessions.session_end_current(request=request, reason="sign_out")
            return redirect("login")
        sessions.end_sessions(
            user=user,
            actor=user,
            reason="signed_out",
            request=request,
            session_ids=[record.pk],
            kind=sessions.Kind.SIGN_OUT,
        )
        messages.success(request, "Session signed out.")
        return redirect(here)
    context = {"subject": user, "own": True, "rows": _rows(request, user), "action": here}
    return render(request, "users/sessions.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def user_sessions(request: HttpRequest, pk: str) -> HttpResponse:
    """A user's sessions, for admins (and the person themselves); POST `session=<id>` or
    `all=1` ends them (SESSION_ENDED, by the admin)."""
    user = get_object_or_404(User, pk=pk)
    require(policy.may_manage_sessions(request.user, user))
    here = reverse("users:user-sessions", args=[user.pk])
    if user.pk == request.user.pk:
        return redirect("account-sessions")
    if request.method == "POST":
        if request.POST.get("all") == "1":
            ended = sessions.end_sessions(
                user=user, actor=request.user, reason="signed_out_by_admin", request=request
            )
            messages.success(request, f"Signed out of {ended} session(s).")
            return redirect(here)
        session_id = _session_id(request)
        ended = 0
        if session_id is not None:
            ended = sessions.end_sessions(
                user=user,
                actor=request.user,
                reason="signed_out_by_admin",
                request=request,
                session_ids=[session_id],
            )
        if ended:
            messages.success(request, "Session signed out.")
        else:
            messages.error(request, "That session has already ended.")
        return redirect(here)
    context = {"subject": user, "own": False, "rows": _rows(request, user), "action": here}
    return render(request, "users/sessions.html", context)


@require_POST
@login_required
def keep_alive(request: HttpRequest) -> HttpResponse:
    """ "Stay signed in": counts as activity. From session.js (fetch) a small JSON answer; from
    the plain form back to the page it was on."""
    sessions.session_keep_alive(request=request)
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"idle_seconds_left": sessions.idle_seconds_left(request)})
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("users:home")
    return HttpResponseRedirect(target)


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    """Signing out: the session's record ends with it (SIGN_OUT in the security log)."""
    sessions.session_end_current(request=request, reason="sign_out")
    return redirect("login")
