"""Create and edit screens, and the per-field validation they call on blur.

The form turns inputs into contract data and maps the services' errors back onto inputs; the
services decide everything else (write-once, uniqueness, stale versions).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from users import services
from users.forms import GROUPS, INPUT_TO_GROUP, UserForm
from users.models import User, UserVersion
from users.views.detail import (
    HtmxHttpRequest,
    can_edit,
    display,
    load_user,
    redirect_or_client_redirect,
)

TEMPLATE = "users/user_form.html"


def conflict_context(exc: services.StaleVersion) -> dict[str, Any]:
    """What changed since the version the form was made from, with who and when."""
    versions = (
        UserVersion.objects.filter(user=exc.current, version__gt=exc.expected_version)
        .select_related("author")
        .order_by("version")
    )
    return {
        "expected_version": exc.expected_version,
        "current_version": exc.current.version,
        "rows": [
            {
                "field": name,
                "label": services.FIELD_LABELS.get(name, name),
                "old": display(old),
                "new": display(new),
            }
            for name, (old, new) in exc.changes.items()
        ],
        "versions": [
            {
                "version": version.version,
                "author": version.author,
                "created_at": version.created_at,
                "fields": [services.FIELD_LABELS.get(name, name) for name in version.changes],
            }
            for version in versions
        ],
    }


def render_form(
    request: HtmxHttpRequest,
    form: UserForm,
    *,
    subject: User | None,
    conflict: dict[str, Any] | None = None,
) -> HttpResponse:
    context = {
        "form": form,
        "subject": subject,
        "conflict": conflict,
        "groups": GROUPS,
        "action": reverse("users:user-edit", args=[subject.pk])
        if subject
        else reverse("users:user-create"),
        "validate_url": reverse("users:user-validate-field")
        + (f"?user={subject.pk}" if subject else ""),
    }
    template = TEMPLATE
    if request.htmx and request.htmx.target == "user-form":
        template = f"{TEMPLATE}#user-form"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@login_required
def user_create(request: HtmxHttpRequest) -> HttpResponse:
    if not request.user.has_perm("users.add_user"):
        raise PermissionDenied
    if request.method == "POST":
        form = UserForm(request.POST)
        if form.is_valid():
            try:
                created = services.user_create(data=form.contract_data(), actor=request.user)
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, f"Created {created.display_name}.")
                return redirect_or_client_redirect(
                    request, reverse("users:user-detail", args=[created.pk])
                )
    else:
        form = UserForm()
    return render_form(request, form, subject=None)


@require_http_methods(["GET", "POST"])
@login_required
def user_edit(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    subject = load_user(pk)
    if not can_edit(request.user, subject):
        raise PermissionDenied
    if subject.deleted:
        messages.error(request, "This user is deleted; restore it before editing.")
        return redirect_or_client_redirect(request, reverse("users:user-detail", args=[pk]))
    conflict = None
    if request.method == "POST":
        form = UserForm(request.POST, user=subject)
        if form.is_valid():
            try:
                updated = services.user_update(
                    user=subject,
                    data=form.contract_data(),
                    actor=request.user,
                    expected_version=form.cleaned_data["expected_version"],
                )
            except services.StaleVersion as exc:
                conflict = conflict_context(exc)
                # Keep the user's input; the form now carries the current version, so sending
                # it again re-applies their change on top of the other one, deliberately.
                data = request.POST.copy()
                data["expected_version"] = str(exc.current.version)
                subject = load_user(pk)
                form = UserForm(data, user=subject)
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                if updated.version == subject.version:
                    messages.info(request, "Nothing changed.")
                else:
                    messages.success(request, f"Saved version {updated.version}.")
                return redirect_or_client_redirect(request, reverse("users:user-detail", args=[pk]))
    else:
        form = UserForm(user=subject)
    return render_form(request, form, subject=subject, conflict=conflict)


@require_POST
@login_required
def user_validate_field(request: HtmxHttpRequest) -> HttpResponse:
    """Check one input on blur; returns that input's wrapper with its error or a hint."""
    subject = None
    if request.GET.get("user"):
        subject = load_user(request.GET["user"])
        if not can_edit(request.user, subject):
            raise PermissionDenied
    elif not request.user.has_perm("users.add_user"):
        raise PermissionDenied
    form = UserForm(request.POST, user=subject)
    name = request.POST.get("_field") or (request.htmx.trigger_name if request.htmx else "")
    if not name or name not in form.fields or form.fields[name].widget.is_hidden:
        return HttpResponse("Unknown field.", status=400, content_type="text/plain")
    errors, hint = form.check_input(name)
    return render(
        request,
        "users/_field.html",
        {
            "field": form[name],
            "errors": errors,
            "hint": hint,
            "validated": True,
            "validate_url": reverse("users:user-validate-field")
            + (f"?user={subject.pk}" if subject else ""),
            "in_group": name in INPUT_TO_GROUP,
        },
    )
