"""A user's file as of a date (issue 13.5): a printable page, or the same contents as JSON.

Compliance and admins only (`policy.may_export_client_file`); built by
`selectors.client_file`, which `manage.py export_client_file` uses too.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from users import policy
from users.contract import FIELD_LABELS, TRACKED_FIELDS
from users.forms import ClientFileForm
from users.models import AccessEvent, ChangeRequest
from users.selectors.client_file import NotYet, as_json, client_file
from users.services.access import access_record
from users.views.common import HtmxHttpRequest, diff_rows, display, load_user, require

TEMPLATE = "users/client_file.html"


@require_GET
@login_required
def user_file(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    """Without `as_of`, the form (today's date filled in); with it, the file or the form's
    error (400)."""
    require(policy.may_export_client_file(request.user))
    user = load_user(pk)
    require(policy.can_view(request.user, user))
    if "as_of" not in request.GET:
        form = ClientFileForm(initial={"as_of": timezone.localdate(), "format": "html"})
        return render(request, TEMPLATE, {"subject": user, "form": form})
    form = ClientFileForm(request.GET)
    file = None
    if form.is_valid():
        try:
            file = client_file(user, as_of=form.cleaned_data["as_of"], generated_by=request.user)
        except NotYet as exc:
            form.add_error("as_of", str(exc))
    if file is None:
        return render(request, TEMPLATE, {"subject": user, "form": form}, status=400)
    access_record(
        kind=AccessEvent.Kind.VIEWED_FILE,
        actor=request.user,
        subject=user,
        request=request,
        detail={"as_of": str(file["as_of"]), "format": form.cleaned_data["format"]},
    )
    if form.cleaned_data["format"] == "json":
        response = HttpResponse(as_json(file), content_type="application/json; charset=utf-8")
        name = f"client-file-{user.pk}-{file['as_of']}.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    context = {
        "subject": user,
        "form": form,
        "file": file,
        "record_rows": [
            (FIELD_LABELS[name], display(file["record"][name], name)) for name in TRACKED_FIELDS
        ],
        "timeline": [
            {**row, "from": display(row["from"], "status"), "to": display(row["to"], "status")}
            for row in file["status_timeline"]
        ],
        "versions": [
            {
                **row,
                "diff": diff_rows(row["changes"], masked=False),
            }
            for row in file["versions"]
        ],
        "accesses": [
            {**row, "kind_label": AccessEvent.Kind(row["kind"]).label} for row in file["access_log"]
        ],
        "requests": [
            {
                **row,
                "kind_label": ChangeRequest.Kind(row["kind"]).label,
                "state_label": ChangeRequest.State(row["state"]).label,
                "diff": diff_rows(row["changes"], masked=False),
            }
            for row in file["change_requests"]
        ],
    }
    return render(request, TEMPLATE, context)
