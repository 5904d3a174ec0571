"""Revealing a masked value (issue 13.3): the detail page shows IBANs, identity and tax numbers
and dates of birth masked (`contract.MASKED`); "Reveal" asks why, logs it, and shows the value
for that page view only.

With htmx the form and then the value replace the mask in place (`users/reveal.html#form`,
`#value`) and the "Accessed by" panel refreshes itself; without JavaScript the same form is a
page of its own and the value is shown on it, with a link back to the user.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from users import contract, policy, validators
from users.models import RevealPurpose, User
from users.services.access import PURPOSE_TEXT_MAX, value_reveal
from users.views.common import HtmxHttpRequest, load_user, require

TEMPLATE = "users/reveal.html"


def masked_items(actor: User, user: User) -> dict[str, dict[str, Any]]:
    """The detail page's masked values that `user` has: name -> what the mask shows."""
    can_reveal = policy.may_reveal(actor)
    return {
        name: {
            "name": name,
            "label": contract.MASKED[name].label,
            "mask": mask,
            "can_reveal": can_reveal,
        }
        for name, mask in contract.masks_of(user).items()
    }


def _shown(name: str, value: Any) -> str:
    """The revealed value as the detail page writes it (an IBAN as schwifty formats it)."""
    if name == "bank_account_number":
        try:
            return validators.iban_details(str(value))["formatted"]
        except ValidationError:
            pass  # a US account number: shown as stored
    return str(value)


@require_http_methods(["GET", "POST"])
@login_required
def user_reveal(request: HtmxHttpRequest, pk: str, name: str) -> HttpResponse:
    """GET: the purpose form (`?cancel=1` from htmx: the mask again). POST: the value, logged,
    or the form with what is missing (nothing logged)."""
    user = load_user(pk)
    require(policy.may_reveal(request.user, user))
    item = masked_items(request.user, user).get(name)
    if item is None:
        raise Http404("This user has no such masked value.")
    context: dict[str, Any] = {
        "subject": user,
        "item": item,
        "purposes": RevealPurpose.choices,
        "note_max": PURPOSE_TEXT_MAX,
        "purpose": request.POST.get("purpose", ""),
        "note": request.POST.get("note", ""),
    }
    if request.method == "GET":
        if request.htmx and request.GET.get("cancel"):
            return render(request, f"{TEMPLATE}#masked", context)
        return render(request, f"{TEMPLATE}#form" if request.htmx else TEMPLATE, context)
    try:
        value = value_reveal(
            actor=request.user,
            subject=user,
            name=name,
            purpose=context["purpose"],
            note=context["note"],
            request=request,
        )
    except ValidationError as exc:
        context["errors"] = exc.message_dict
        partial = f"{TEMPLATE}#form" if request.htmx else TEMPLATE
        # htmx swaps a 200 only: the form comes back in place with its errors.
        return render(request, partial, context, status=200 if request.htmx else 400)
    context["value"] = _shown(name, value)
    if not request.htmx:
        return render(request, TEMPLATE, context)
    response = render(request, f"{TEMPLATE}#value", context)
    return trigger_client_event(response, "refresh-accesses")
