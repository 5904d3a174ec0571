from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.http import require_safe
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import views as webauthn_views

from users.api import api
from users.views import account, sessions, signin

# django-otp-webauthn's endpoints (its URL names; its scripts reverse them), with the two
# completions that also write the security log and the time of the check (signin.py).
webauthn_urls = (
    [
        path(
            "registration/begin/",
            webauthn_views.BeginCredentialRegistrationView.as_view(),
            name="credential-registration-begin",
        ),
        path(
            "registration/complete/",
            signin.PasskeyEnrol.as_view(),
            name="credential-registration-complete",
        ),
        path(
            "authentication/begin/",
            webauthn_views.BeginCredentialAuthenticationView.as_view(),
            name="credential-authentication-begin",
        ),
        path(
            "authentication/complete/",
            signin.PasskeySignIn.as_view(),
            name="credential-authentication-complete",
        ),
        path(
            "jsi18n/",
            JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
            name="js-i18n-catalog",
        ),
    ],
    "otp_webauthn",
)


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links to; send them to the SVG icon.

    The static URL is resolved per request, not at import, because the manifest storage only
    knows the hashed name once collectstatic has run.
    """
    return redirect(static("console/favicon.svg"))


urlpatterns = [
    path("login/", signin.sign_in, name="login"),
    path("login/verify/", signin.verify, name="signin-verify"),
    path("login/enrol/", signin.enrol, name="signin-enrol"),
    path("login/recovery-codes/", signin.recovery_codes, name="signin-recovery-codes"),
    path("webauthn/", include(webauthn_urls)),
    path("logout/", sessions.sign_out, name="logout"),
    path("account/factors/", account.own_factors, name="account-factors"),
    path("account/sessions/", sessions.own_sessions, name="account-sessions"),
    path("account/sessions/keep-alive/", sessions.keep_alive, name="account-sessions-keep-alive"),
    path("password/", account.password_change, name="password_change"),
    path("password/done/", account.password_change_done, name="password_change_done"),
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon, name="favicon"),
    path("api/", api.urls),
    path("", include("users.urls")),
]
