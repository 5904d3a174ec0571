from django.urls import path

from users.views import common

app_name = "users"

urlpatterns = [
    path("", common.home, name="home"),
]
