"""The admin site: admins only, as `users.policy.may_use_admin` says; everyone else signed in
gets the console's 403 page.

Django's own site answers a signed-in user it refuses with its login form ("You are
authenticated as …, but are not authorized to access this page. Would you like to log in to a
different account?"), which reads to a back-office user as if their sign-in had failed. A
refusal is a 403 here, like anywhere else in the console; an anonymous visitor still gets the
admin's sign-in form.
"""

from __future__ import annotations

from functools import update_wrapper

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from users import policy


class ConsoleAdminSite(admin.AdminSite):
    site_header = "User console: raw admin"
    site_title = "User console admin"

    def has_permission(self, request: HttpRequest) -> bool:
        return policy.may_use_admin(request.user)

    def _refuse_signed_in_outsiders(self, request: HttpRequest) -> None:
        if request.user.is_authenticated and not self.has_permission(request):
            raise PermissionDenied("Only console admins may use the Django admin.")

    def admin_view(self, view, cacheable=False):
        """Every admin URL (index, model pages, password change, logout, the catch-all) is
        wrapped here; the check comes before Django's redirect to its login form."""

        wrapped = super().admin_view(view, cacheable)

        # Outside Django's wrapper, which would redirect the outsider to its login form first.
        def inner(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            self._refuse_signed_in_outsiders(request)
            return wrapped(request, *args, **kwargs)

        return update_wrapper(inner, wrapped)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        """The admin has no sign-in of its own: the console's (password, then the second
        factor, with the same throttling) brings an admin back here."""
        # Not wrapped by admin_view: a signed-in outsider opening /admin/login/ would get the
        # "log in to a different account" form.
        self._refuse_signed_in_outsiders(request)
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            next_url = reverse("admin:index")
        return redirect_to_login(next_url, resolve_url(settings.LOGIN_URL))
