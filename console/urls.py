from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.http import require_safe

from users.api import api
from users.views import account


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links to; send them to the SVG icon.

    The static URL is resolved per request, not at import, because the manifest storage only
    knows the hashed name once collectstatic has run.
    """
    return redirect(static("console/favicon.svg"))


urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", account.password_change, name="password_change"),
    path("password/done/", account.password_change_done, name="password_change_done"),
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon, name="favicon"),
    path("api/", api.urls),
    path("", include("users.urls")),
]
