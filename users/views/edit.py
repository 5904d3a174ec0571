"""Create and edit screens, and the per-field validation they call on blur.

The form turns inputs into contract data and maps the services' errors back onto inputs; the
services decide everything else (write-once, uniqueness, stale versions).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from users import policy, selectors, services, validators
from users.contract import FIELD_LABELS
from users.forms import (
    COUNTRY_DATALIST,
    DEPENDENT_INPUTS,
    GROUPS,
    INPUT_TO_GROUP,
    WIDE_INPUTS,
    UserForm,
)
from users.models import ChangeRequest, User
from users.selectors import change_requests as change_request_selectors
from users.views.approvals import proposed_message
from users.views.common import (
    HtmxHttpRequest,
    display,
    load_user,
    parse_version,
    redirect_or_client_redirect,
    require,
)

TEMPLATE = "users/user_form.html"


def _own_value(form: UserForm, field: str, subject: User) -> Any:
    """What the user's form says for `field`, normalised like the stored values.

    Checked against a blank copy of the user (same id, same residency for national phone
    numbers) so that only the value's own rules apply, not write-once against the new value.
    """
    blank = User(pk=subject.pk, residency_country=subject.residency_country)
    cleaned = services.clean_user_data({field: form.contract_value(field)}, user=blank)
    return cleaned[field]


def merge_conflict(
    data: QueryDict, exc: services.StaleVersion, subject: User, *, manage_access: bool
) -> tuple[QueryDict, dict[str, Any]]:
    """Re-base the user's input on the current version after a stale save.

    A field someone else changed and this user left alone takes the new value, so saving again
    cannot undo the other change; a field both changed keeps this user's input and is shown
    as such. The returned data carries the current version, so saving again applies the
    user's own changes on top, deliberately.
    """
    merged = data.copy()
    merged["expected_version"] = str(subject.version)
    submitted = UserForm(data, user=subject, manage_access=manage_access)
    current = UserForm.initial_for(subject)
    rows = []
    for field, (old, new) in exc.changes.items():
        inputs = list(GROUPS[field]) if field in GROUPS else [field]
        in_form = all(name in submitted.fields for name in inputs)
        mine: Any = None
        kept = False
        if in_form and any(name in data for name in inputs):
            try:
                mine = _own_value(submitted, field, subject)
                kept = mine not in (old, new)
            except ValidationError:
                kept = True  # their input does not even validate: leave it for them to fix
                mine = " ".join(data.get(name, "") for name in inputs).strip()
        if in_form and not kept:
            for name in inputs:
                merged.setlist(name, [str(current.get(name) or "")])
        rows.append(
            {
                "field": field,
                "label": FIELD_LABELS.get(field, field),
                "old": display(old, field, masked=True),
                "new": display(new, field, masked=True),
                "kept": kept,
                "yours": display(mine, field, masked=True) if kept else "",
            }
        )
    versions = selectors.versions_since(subject, exc.expected_version)
    conflict = {
        "expected_version": exc.expected_version,
        "current_version": subject.version,
        "rows": rows,
        "any_kept": any(row["kept"] for row in rows),
        "versions": [
            {
                "version": version.version,
                "author": version.author,
                "created_at": version.created_at,
                "fields": [FIELD_LABELS.get(name, name) for name in version.changes],
            }
            for version in versions
        ],
    }
    return merged, conflict


def _posted_access_lists(data: QueryDict, subject: User) -> dict[str, list[str]]:
    """The access lists a POST carries, read as the form reads them, for the policy to judge."""
    reader = UserForm(data, user=subject)  # with the lists' inputs, whoever posted
    return {name: reader.contract_value(name) for name in policy.ACCESS_LIST_FIELDS if name in data}


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
        "wide_inputs": WIDE_INPUTS,
        "country_datalist": COUNTRY_DATALIST,
        "country_options": validators.country_options(),
        "action": reverse("users:user-edit", args=[subject.pk])
        if subject
        else reverse("users:user-create"),
        "validate_url": reverse("users:user-validate-field")
        + (f"?user={subject.pk}" if subject else ""),
    }
    if subject is not None:
        # Four-eyes: a new counter account waits for a second person (when guarded here).
        context["account_guarded"] = ChangeRequest.Kind.COUNTER_ACCOUNT in policy.guarded_kinds()
        # A stored account number is masked: its input left empty keeps it (issue 13.3).
        context["account_masked"] = bool(subject.bank_account_number)
        context["account_pending"] = next(
            (
                r
                for r in change_request_selectors.open_requests_for(subject)
                if r.kind == ChangeRequest.Kind.COUNTER_ACCOUNT
            ),
            None,
        )
    template = TEMPLATE
    if request.htmx and request.htmx.target == "user-form":
        template = f"{TEMPLATE}#user-form"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@login_required
def user_create(request: HtmxHttpRequest) -> HttpResponse:
    require(policy.may_create(request.user))
    if request.method == "POST":
        form = UserForm(request.POST)
        if form.is_valid():
            data = form.contract_data()
            policy.check_create(request.user, data)
            try:
                created = services.user_create(data=data, actor=request.user)
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
    require(policy.can_edit(request.user, subject))
    manage_access = policy.may_change_access_lists(request.user)
    if subject.deleted:
        messages.error(request, "This user is deleted; restore it before editing.")
        return redirect_or_client_redirect(request, reverse("users:user-detail", args=[pk]))
    conflict = None
    if request.method == "POST":
        # The form leaves the lists out for those who may not change them; a crafted POST
        # that changes them anyway is refused, never silently dropped.
        policy.check_update(request.user, subject, _posted_access_lists(request.POST, subject))
        form = UserForm(request.POST, user=subject, manage_access=manage_access)
        expected = parse_version(request.POST.get("expected_version"))
        try:
            if expected is not None and expected > subject.version:
                raise ValidationError(
                    f"This form claims version {expected}, but the user is at version "
                    f"{subject.version}; reload the page.",
                    code="version",
                )
            if expected is not None and expected != subject.version:
                # The service refuses a stale edit before reading the data; so does the screen,
                # rather than judge the input against a version its author never saw.
                raise services.StaleVersion(
                    current=subject,
                    expected_version=expected,
                    changes=selectors.version_diff(
                        subject, from_version=expected, to_version=subject.version
                    ),
                )
            if form.is_valid():
                updated = services.user_update(
                    user=subject,
                    data=form.contract_data(),
                    actor=request.user,
                    expected_version=form.cleaned_data["expected_version"],
                    change_reason=request.POST.get("change_reason", ""),
                )
                proposed = services.proposed_changes(updated)
                if updated.version != subject.version:
                    messages.success(request, f"Saved version {updated.version}.")
                elif not proposed:
                    messages.info(request, "Nothing changed.")
                if proposed:
                    # Four-eyes: the guarded fields wait; the others were saved above.
                    messages.warning(request, proposed_message(proposed))
                return redirect_or_client_redirect(request, reverse("users:user-detail", args=[pk]))
        except services.StaleVersion as exc:
            subject = load_user(pk)
            data, conflict = merge_conflict(request.POST, exc, subject, manage_access=manage_access)
            form = UserForm(data, user=subject, manage_access=manage_access)
        except ValidationError as exc:
            form.add_service_errors(exc)
    else:
        form = UserForm(user=subject, manage_access=manage_access)
    return render_form(request, form, subject=subject, conflict=conflict)


@require_POST
@login_required
def user_validate_field(request: HtmxHttpRequest) -> HttpResponse:
    """Check one input on blur; returns that input's wrapper with its error or a hint."""
    subject = None
    if request.GET.get("user"):
        subject = load_user(request.GET["user"])
        require(policy.can_edit(request.user, subject))
    else:
        require(policy.may_create(request.user))
    form = UserForm(
        request.POST, user=subject, manage_access=policy.may_change_access_lists(request.user)
    )
    name = request.POST.get("_field") or (request.htmx.trigger_name if request.htmx else "")
    if not name or name not in form.fields or form.fields[name].widget.is_hidden:
        return HttpResponse("Unknown field.", status=400, content_type="text/plain")
    validate_url = reverse("users:user-validate-field") + (f"?user={subject.pk}" if subject else "")
    html = [_checked_field(request, form, name, validate_url=validate_url)]
    for dependent in DEPENDENT_INPUTS.get(name, ()):
        # An input whose check reads this one is checked again and swapped out of band, so its
        # error (or its hint) follows the new value: only when the user has typed into it.
        field = form.fields.get(dependent)
        if field is None or field.widget.attrs.get("readonly") or not form.data.get(dependent):
            continue
        html.append(_checked_field(request, form, dependent, validate_url=validate_url, oob=True))
    return HttpResponse("".join(html))


def _checked_field(
    request: HtmxHttpRequest, form: UserForm, name: str, *, validate_url: str, oob: bool = False
) -> str:
    errors, hint = form.check_input(name)
    return render_to_string(
        "users/_field.html",
        {
            "field": form[name],
            "errors": errors,
            "hint": hint,
            "validated": True,
            "validate_url": validate_url,
            "in_group": name in INPUT_TO_GROUP,
            "wide_inputs": WIDE_INPUTS,
            "oob": oob,
        },
        request=request,
    )
