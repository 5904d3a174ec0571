"""The user detail screen: fields, status moves, feature flags, history, delete and restore.

Each region HTMX replaces is a `{% partialdef %}` of `users/user_detail.html` whose root has the
same id. A GET from HTMX that targets one of them gets that region alone; a successful POST
returns its own region and tells the others (`refresh-<region>` events) to fetch theirs, so that
a version number or a status badge is never left stale on the page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from users import policy, selectors, services, validators
from users.contract import FIELD_LABELS
from users.models import (
    AccessEvent,
    FeatureFlag,
    Role,
    Status,
    User,
    is_user_id,
    needs_reason_code,
)
from users.selectors.access import PANEL_LIMIT, recent_accesses
from users.selectors.assignment import assignable_people, recent_assignments
from users.selectors.reason_codes import active_reason_codes
from users.selectors.security import locked_out_until
from users.services.access import access_record
from users.services.assignment import case_assign, case_claim, case_unassign
from users.services.factors import factor_summary, factors_reset
from users.services.security import account_unlock
from users.views.approvals import four_eyes_events, pending_context, proposed_message
from users.views.common import (
    HtmxHttpRequest,
    diff_rows,
    load_user,
    move_user,
    needs_step_up,
    parse_version,
    redirect_or_client_redirect,
    require,
    step_up_redirect,
)
from users.views.reveal import masked_items

TEMPLATE = "users/user_detail.html"
# Regions of the page that refresh themselves when another region changed the user.
REGIONS = (
    "summary",
    "pending",
    "assignment",
    "status",
    "note",
    "flags",
    "roles",
    "signin",
    "history",
    "danger",
)
HISTORY_LIMIT = 100


def announce_change(response: HttpResponse, *, source: str) -> HttpResponse:
    """Tell every other region of the detail page that the user changed."""
    for region in REGIONS:
        if region != source:
            trigger_client_event(response, f"refresh-{region}")
    return response


# --- presenting values ------------------------------------------------------------------------


def bank_details(user: User) -> dict[str, Any] | None:
    """Bank name and BIC schwifty knows for the stored IBAN (display only)."""
    if user.bank_account_number_type != "IBAN" or not user.bank_account_number:
        return None
    try:
        return validators.iban_details(user.bank_account_number)
    except ValidationError:
        return None


# --- context per region -----------------------------------------------------------------------


def status_context(request: HtmxHttpRequest, user: User) -> dict[str, Any]:
    options = policy.move_options(request.user, user.status)
    can_move = options.allowed and not user.deleted
    return {
        "recommended_moves": list(options.recommended),
        "off_flow_moves": list(options.off_flow),
        "can_move": can_move,
        "can_move_off_flow": options.off_flow_allowed,
        "can_add_note": policy.may_add_note(request.user, user) and not user.deleted,
        # The recommended moves that need a reason code (into failed or inactive).
        "coded_moves": [
            move for move in options.recommended if needs_reason_code(user.status, move)
        ],
        "reason_codes": active_reason_codes() if can_move else [],
    }


def assignment_context(request: HtmxHttpRequest, user: User) -> dict[str, Any]:
    """The assignment region (issue 14.1): who works the case, and what the actor may do about
    it: take it ("Assign to me", or take it over: admins), give it back, or give it to
    someone (admins)."""
    actor = request.user
    assignee = user.assignee
    live = not user.deleted and user.pk != actor.pk
    others = policy.may_assign_others(actor)
    mine = assignee is not None and assignee.pk == actor.pk
    return {
        "assignee": assignee,
        "can_claim": live and policy.may_claim(actor) and not mine and (assignee is None or others),
        "can_unassign": live and assignee is not None and (mine or others),
        "can_assign_others": live and others,
        # Called by the region's select only (admins): no query for anyone else.
        "assign_people": assignable_people,
        "assignment_errors": [],
    }


def flags_context(request: HtmxHttpRequest, user: User) -> dict[str, Any]:
    grants = {grant.flag: grant for grant in user.flag_grants.all()}
    return {
        "flags": [
            {"value": flag.value, "label": flag.label, "grant": grants.get(flag.value)}
            for flag in FeatureFlag
        ],
        "can_manage_flags": policy.may_manage_flags(request.user) and not user.deleted,
    }


def roles_context(
    request: HtmxHttpRequest, user: User, chosen: list[str] | None = None
) -> dict[str, Any]:
    """The roles region: what the user holds, for everyone who sees the page; a form for admins
    (`chosen`: the roles a step-up interrupted, checked again for the person to save)."""
    held = user.role_names()
    checked = set(chosen) if chosen is not None else held
    return {
        "roles": [
            {
                "value": role.value,
                "label": role.label,
                "held": role in held,
                "checked": role in checked,
            }
            for role in Role
        ],
        "can_manage_roles": policy.may_manage_roles(request.user) and not user.deleted,
    }


def signin_context(request: HtmxHttpRequest, user: User) -> dict[str, Any]:
    """The sign-in region (admins): a lockout to lift, second factors to reset."""
    if not policy.may_unlock(request.user):
        return {"can_unlock": False, "can_reset_factors": False}
    return {
        "can_unlock": True,
        "locked_until": locked_out_until(user.email or ""),
        "can_reset_factors": policy.may_reset_factors(request.user, user),
        "factors": factor_summary(user),
    }


def history_context(request: HtmxHttpRequest, user: User) -> dict[str, Any]:
    versions = selectors.recent_versions(user, limit=HISTORY_LIMIT)
    for version in versions:
        version.fields = [FIELD_LABELS.get(name, name) for name in version.changes]
    status_changes = selectors.recent_status_changes(user, limit=HISTORY_LIMIT)
    notes = selectors.recent_case_notes(user, limit=HISTORY_LIMIT)
    assignments = recent_assignments(user, limit=HISTORY_LIMIT)
    return {
        "versions": versions,
        # Status changes, case notes (issue 14.2) and assignment changes (issue 14.1), newest
        # first: the latest HISTORY_LIMIT.
        "timeline": selectors.status_timeline(status_changes, notes, assignments)[:HISTORY_LIMIT],
        "history_limit": HISTORY_LIMIT,
        "four_eyes_events": four_eyes_events(user, limit=HISTORY_LIMIT),
    }


def diff_context(user: User, raw_from: str | None, raw_to: str | None) -> dict[str, Any]:
    """The diff between two versions named in the query string, or a clear error."""
    default_from, default_to = max(user.version - 1, 1), user.version
    try:
        from_version = int(raw_from) if raw_from else default_from
        to_version = int(raw_to) if raw_to else default_to
    except ValueError:
        return {
            "diff_error": "Versions are whole numbers.",
            "diff_from": default_from,
            "diff_to": default_to,
        }
    context: dict[str, Any] = {"diff_from": from_version, "diff_to": to_version}
    if not (1 <= from_version <= user.version and 1 <= to_version <= user.version):
        context["diff_error"] = f"Choose versions between 1 and {user.version}."
    elif from_version == to_version:
        context["diff_rows"] = []
    else:
        context["diff_rows"] = diff_rows(
            selectors.version_diff(user, from_version=from_version, to_version=to_version)
        )
    return context


def detail_context(
    request: HtmxHttpRequest, user: User, *, history: bool = False, **extra: Any
) -> dict[str, Any]:
    """Every region's context; the history's (the heaviest: versions, timeline, four-eyes
    requests, a diff) only with `history`, when the page draws it in place."""
    context: dict[str, Any] = {
        "subject": user,
        "bank": bank_details(user),
        # Masked until revealed with a purpose (users/views/reveal.py).
        "masks": masked_items(request.user, user),
        "can_edit": policy.can_edit(request.user, user) and not user.deleted,
        "can_delete": policy.may_delete(request.user, user) and not user.deleted,
        "can_restore": policy.may_restore(request.user, user) and user.deleted,
        "can_view_history": policy.may_view_history(request.user),
        "can_export_file": policy.may_export_client_file(request.user),
        # Another user's sessions (one's own are under the account menu): admins.
        "can_manage_sessions": user.pk != request.user.pk
        and policy.may_manage_sessions(request.user, user),
        "status_errors": [],
        "flag_errors": [],
        "danger_errors": [],
    }
    context |= pending_context(request.user, user)
    context |= assignment_context(request, user)
    context |= status_context(request, user)
    context |= signin_context(request, user)
    context |= flags_context(request, user)
    context |= roles_context(request, user, extra.pop("chosen_roles", None))
    if history and context["can_view_history"]:
        context |= history_context(request, user)
        if "diff_from" not in extra:
            context |= diff_context(user, None, None)
    context |= extra
    return context


def render_region(
    request: HtmxHttpRequest, user: User, region: str, status: int = 200, **extra: Any
) -> HttpResponse:
    if region == "history":  # the history alone: none of the other regions' reads
        context = (
            {"subject": user} | history_context(request, user) | diff_context(user, None, None)
        )
    else:
        context = detail_context(request, user, **extra)
    return render(request, f"{TEMPLATE}#{region}", context, status=status)


def render_page(
    request: HtmxHttpRequest, user: User, status: int = 200, *, full: bool = False, **extra: Any
) -> HttpResponse:
    """The whole page. The history and "Accessed by", at the foot of the page and the most
    costly to read, follow it: each region fetches itself as soon as the page has loaded
    (htmx), or, without JavaScript, behind a link to the page drawn `full` (`?full=1`). A page
    that shows a diff draws its history in place."""
    full = full or "diff_from" in extra
    context = detail_context(request, user, history=full, **extra)
    if full:
        context |= accesses_context(request, user)
    else:
        context["history_later"] = context["can_view_history"]
        context["accesses_later"] = policy.may_view_access_log(request.user)
    return render(request, TEMPLATE, context, status=status)


def accesses_context(request: HtmxHttpRequest, user: User) -> dict[str, Any]:
    """ "Accessed by" (compliance and admins): with the whole page, and alone after a reveal."""
    if not policy.may_view_access_log(request.user):
        return {}
    return {"accesses": recent_accesses(user), "accesses_limit": PANEL_LIMIT}


def render_region_or_page(
    request: HtmxHttpRequest, user: User, region: str, **extra: Any
) -> HttpResponse:
    """The region alone for htmx, the whole page (same context) for a plain request."""
    if request.htmx:
        return render_region(request, user, region, **extra)
    return render_page(request, user, **extra)


def region_saved(
    request: HtmxHttpRequest, user: User, region: str, message: str, message_key: str
) -> HttpResponse:
    """After a successful POST: the updated region plus a refresh event for the others
    (htmx), or a flash message and a redirect to the page (plain request)."""
    if request.htmx:
        return announce_change(
            render_region(request, user, region, **{message_key: message}), source=region
        )
    messages.success(request, message)
    return redirect("users:user-detail", pk=user.pk)


def error_messages(exc: ValidationError) -> list[str]:
    return list(exc.messages)


# --- views ------------------------------------------------------------------------------------


@require_GET
@login_required
def user_detail(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    user = load_user(pk)
    require(policy.can_view(request.user, user))
    region = request.htmx.target if request.htmx else None
    if region in REGIONS:
        if region == "history":
            require(policy.may_view_history(request.user))
        return render_region(request, user, region)
    if region == "accessed-by":
        require(policy.may_view_access_log(request.user))
        return render(
            request, f"{TEMPLATE}#accesses", {"subject": user} | accesses_context(request, user)
        )
    # The whole page is the access (issue 13.4); an htmx region refreshing itself after a
    # change on this page is not logged again.
    access_record(
        kind=AccessEvent.Kind.VIEWED_DETAIL, actor=request.user, subject=user, request=request
    )
    return render_page(request, user, full="full" in request.GET)


@require_POST
@login_required
def user_status(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    """Move the user; a move off the recommended flow needs its own permission and a reason."""
    require(policy.may_change_status(request.user))
    _, errors = move_user(
        request,
        load_user(pk),
        target=request.POST.get("status", ""),
        reason=request.POST.get("reason", ""),
        reason_code=request.POST.get("reason_code", ""),
        note=request.POST.get("note", ""),
        expected_version=parse_version(request.POST.get("expected_version")),
    )
    user = load_user(pk)
    if errors:
        extra = {
            "status_errors": errors,
            "status_reason": request.POST.get("reason", ""),
            "status_reason_code": request.POST.get("reason_code", ""),
            "status_note": request.POST.get("note", ""),
        }
        return render_region_or_page(request, user, "status", **extra)
    message = f"Moved to {Status(user.status).label}."
    return region_saved(request, user, "status", message, "status_message")


# What the assignment form's `action` asks for.
ASSIGN_ACTIONS = ("claim", "unassign", "assign")


@require_POST
@login_required
def user_assign(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    """Assign the case (issue 14.1): `action` claim ("Assign to me"), unassign, or assign to
    the person `assignee` (admins). `expected_assignee` is the assignee the page showed: a case
    taken meanwhile is refused, naming who has it; that and the policy's refusals (taking
    over a colleague's case without being an admin, ...) are shown in the region."""
    require(policy.may_claim(request.user))
    user = load_user(pk)
    require(policy.can_view(request.user, user))
    action = request.POST.get("action", "")
    expected = request.POST.get("expected_assignee", "").strip() or None
    errors: list[str] = []
    assignee: User | None = None
    if action not in ASSIGN_ACTIONS:
        errors = ["Choose “Assign to me”, “Unassign” or a person to assign."]
    elif expected is not None and not is_user_id(expected):
        errors = ["The page sent no valid assignee: reload it and try again."]
    elif action == "assign":
        chosen = request.POST.get("assignee", "").strip()
        assignee = User.objects.filter(pk=chosen).first() if is_user_id(chosen) else None
        if assignee is None:
            errors = ["Choose the person to assign the case to."]
    if not errors:
        try:
            if action == "claim":
                saved = case_claim(user=user, actor=request.user, expected_assignee=expected)
            elif action == "unassign":
                saved = case_unassign(user=user, actor=request.user, expected_assignee=expected)
            else:
                saved = case_assign(
                    user=user, assignee=assignee, actor=request.user, expected_assignee=expected
                )
        except ValidationError as exc:
            errors = error_messages(exc)
        except PermissionDenied as exc:
            errors = [str(exc)]
    user = load_user(pk)
    if errors:
        return render_region_or_page(request, user, "assignment", assignment_errors=errors)
    message = f"Assigned to {saved.assignee.display_name}." if saved.assignee else "Unassigned."
    return region_saved(request, user, "assignment", message, "assignment_message")


@require_POST
@login_required
def user_note(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    """Add a case note (compliance and admins); the timeline shows it with the moves."""
    user = load_user(pk)
    require(policy.may_add_note(request.user, user))
    try:
        services.case_note_add(user=user, text=request.POST.get("note", ""), actor=request.user)
    except ValidationError as exc:
        extra = {"note_errors": error_messages(exc), "note_text": request.POST.get("note", "")}
        return render_region_or_page(request, user, "note", **extra)
    return region_saved(request, user, "note", "Note added to the case.", "note_message")


@require_POST
@login_required
def user_flag(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    """Grant or revoke one feature flag (admins); the service records who and when."""
    require(policy.may_manage_flags(request.user))
    user = load_user(pk)
    flag = request.POST.get("flag", "")
    enabled = request.POST.get("enabled", "") in ("1", "true", "on")
    errors: list[str] = []
    proposed: list = []
    own_console = flag == FeatureFlag.CONSOLE and not enabled and user.pk == request.user.pk
    if own_console and request.POST.get("confirm") != "1":
        # Revoking one's own CONSOLE flag ends one's own access: ask first.
        return render_region_or_page(request, user, "flags", confirm_own_console=True)
    if own_console and needs_step_up(request):
        return step_up_redirect(request, reverse("users:user-detail", args=[user.pk]))
    if flag not in FeatureFlag.values:
        errors = [f"Unknown feature flag {flag!r}."]
    else:
        try:
            saved = services.user_set_flag(
                user=user, flag=flag, enabled=enabled, actor=request.user
            )
        except ValidationError as exc:
            errors = error_messages(exc)
        else:
            proposed = services.proposed_changes(saved)
    user = load_user(pk)
    if errors:
        return render_region_or_page(request, user, "flags", flag_errors=errors)
    if own_console and not errors:
        # No refresh of the other regions (each would now be sent to sign in): one full load
        # of the page, which sends the person to sign in.
        return redirect_or_client_redirect(request, reverse("users:user-detail", args=[user.pk]))
    message = f"{FeatureFlag(flag).label} {'granted' if enabled else 'revoked'}."
    if proposed:
        message = proposed_message(proposed)
    return region_saved(request, user, "flags", message, "flag_message")


def _roles_back_url(user: User, roles: list[str]) -> str:
    """Where a step-up returns: the roles form with the person's choice still checked."""
    query = urlencode([("role", role) for role in roles] or [("role", "")])
    return f"{reverse('users:user-roles', args=[user.pk])}?{query}"


@require_http_methods(["GET", "POST"])
@login_required
def user_roles(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    """Change the user's roles (admins, issue 11.9), after a second-factor check within five
    minutes (10.5). GET shows the form with `role` choices checked (where a step-up returns);
    taking one's own admin role asks for confirmation first. The service versions the change,
    logs each grant and revocation, and ends the user's sessions when a role is taken away."""
    require(policy.may_manage_roles(request.user))
    user = load_user(pk)
    if request.method == "GET":
        if "role" not in request.GET:
            return render_region_or_page(request, user, "roles")
        return render_region_or_page(
            request,
            user,
            "roles",
            chosen_roles=[role for role in request.GET.getlist("role") if role],
            roles_message="Second factor checked: save the roles again.",
        )
    # An unknown role is the service's refusal (user_set_roles), shown below like any other.
    roles = [role for role in request.POST.getlist("role") if role]
    own_admin = user.pk == request.user.pk and Role.ADMIN in user.role_names() - set(roles)
    if own_admin and request.POST.get("confirm") != "1":
        return render_region_or_page(
            request, user, "roles", confirm_own_admin=True, chosen_roles=roles
        )
    if needs_step_up(request):
        return step_up_redirect(request, _roles_back_url(user, roles))
    try:
        saved = services.user_set_roles(
            user=user,
            roles=roles,
            actor=request.user,
            expected_version=parse_version(request.POST.get("expected_version")),
        )
    except (ValidationError, services.StaleVersion) as exc:
        errors = error_messages(exc) if isinstance(exc, ValidationError) else [str(exc)]
        user = load_user(pk)
        return render_region_or_page(request, user, "roles", role_errors=errors, chosen_roles=roles)
    user = load_user(pk)
    proposed = services.proposed_changes(saved)
    if proposed:
        # Four-eyes: nothing changed yet; a second person approves on this page.
        return region_saved(request, user, "roles", proposed_message(proposed), "roles_message")
    if own_admin:
        # One's own admin pages are gone: a full load of the page shows what is left.
        messages.success(request, "Roles saved: you are no longer an admin.")
        return redirect_or_client_redirect(request, reverse("users:user-detail", args=[user.pk]))
    labels = ", ".join(Role(role).label for role in sorted(roles)) or "no console role"
    return region_saved(request, user, "roles", f"Roles saved: {labels}.", "roles_message")


@require_GET
@login_required
def user_diff(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    require(policy.may_view_history(request.user))
    user = load_user(pk)
    extra = diff_context(user, request.GET.get("from"), request.GET.get("to"))
    if request.htmx:
        return render(request, f"{TEMPLATE}#diff", {"subject": user, **extra})
    return render_page(request, user, **extra)


@require_http_methods(["GET", "POST"])
@login_required
def user_delete(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    """GET asks for confirmation (works without JavaScript); POST soft-deletes."""
    require(policy.may_delete(request.user))
    user = load_user(pk)
    policy.check_delete(request.user, user)
    if request.method == "GET":
        return render_region_or_page(request, user, "danger", confirm_delete=True)
    try:
        services.user_delete(
            user=user,
            actor=request.user,
            expected_version=parse_version(request.POST.get("expected_version")),
        )
    except services.StaleVersion as exc:
        errors = [str(exc)]
        user = load_user(pk)
        return render_region_or_page(request, user, "danger", danger_errors=errors)
    messages.success(request, "User deleted. An admin can restore it.")
    return redirect_or_client_redirect(request, reverse("users:user-detail", args=[pk]))


@require_POST
@login_required
def user_restore(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    require(policy.may_restore(request.user))
    user = load_user(pk)
    policy.check_restore(request.user, user)
    try:
        services.user_restore(user=user, actor=request.user)
    except ValidationError as exc:
        errors = error_messages(exc)
        return render_region_or_page(request, user, "danger", danger_errors=errors)
    messages.success(request, "User restored.")
    return redirect_or_client_redirect(request, reverse("users:user-detail", args=[pk]))


@require_POST
@login_required
def user_unlock(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    """Lift the user's sign-in lockout (admins); logged as UNLOCKED."""
    require(policy.may_unlock(request.user))
    user = load_user(pk)
    if not user.email:
        return render_region_or_page(
            request, user, "signin", signin_errors=["No email: no lockout."]
        )
    account_unlock(username=user.email, actor=request.user, request=request)
    return region_saved(
        request, user, "signin", "Unlocked: they may sign in again.", "signin_message"
    )


@require_http_methods(["GET", "POST"])
@login_required
def user_factors_reset(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    """GET asks for confirmation (works without JavaScript); POST, after step-up, removes every
    second factor of the user (logged as FACTOR_RESET)."""
    require(policy.may_unlock(request.user))
    user = load_user(pk)
    require(policy.may_reset_factors(request.user, user))
    if request.method == "GET":
        return render_region_or_page(request, user, "signin", confirm_factor_reset=True)
    if needs_step_up(request):
        return step_up_redirect(request, reverse("users:user-factors-reset", args=[user.pk]))
    removed = factors_reset(user=user, actor=request.user, request=request)
    message = f"Second factors reset ({removed} removed): they enrol again at their next sign-in."
    return region_saved(request, user, "signin", message, "signin_message")
