from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from users.api import api
from users.views import account

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", account.password_change, name="password_change"),
    path("password/done/", account.password_change_done, name="password_change_done"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("users.urls")),
]
