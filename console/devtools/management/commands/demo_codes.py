"""The demo logins' current second-factor codes (what their authenticator app would show)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from console.devtools.management.commands.seed_demo import DEMO_LOGINS
from console.devtools.totp import device_code
from users.models import User
from users.services import factors


class Command(BaseCommand):
    help = "Print the current 6-digit code of each demo login (make codes)."

    def handle(self, *args: Any, **options: Any) -> None:
        left = 30 - int(time.time()) % 30
        for _role, email, *_ in DEMO_LOGINS:
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                self.stdout.write(f"  {email:<28} not seeded yet: run make run first")
                continue
            device = factors.totp_ensure(user=user)
            self.stdout.write(f"  {email:<28} {device_code(device)}")
        self.stdout.write(f"(valid for {left} more seconds; each code signs in once)")
