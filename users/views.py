from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET


@require_GET
def home(request):
    return redirect("users:user-list")


@require_GET
@login_required
def user_list(request):
    return render(request, "users/user_list.html", {})
