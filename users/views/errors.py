"""The CSRF failure page (settings.CSRF_FAILURE_VIEW): a refused token almost always means the
session ended (cookies gone, signed out elsewhere) or the page was open too long, so it says
that and offers to sign in again, never "no permission"."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from users.views.common import sign_in_again_url


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """403 with the way back: for htmx an `HX-Redirect` to sign in (followed as a full page
    load, never a page inside a region); else the page, linking to sign in and back to the
    page that sent the form."""
    sign_in_url = sign_in_again_url(request)
    if request.headers.get("HX-Request") == "true":
        response = HttpResponse(status=403)
        response["HX-Redirect"] = sign_in_url
        return response
    return render(request, "403_csrf.html", {"sign_in_url": sign_in_url}, status=403)
