"""`manage.py unlock_account EMAIL [--ip ADDRESS]`: lift a sign-in lockout (for when no admin
can sign in to do it on the security log page)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_ipv46_address

from users.selectors.security import locked_out_until
from users.services.security import account_unlock


class Command(BaseCommand):
    help = (
        "Lift the sign-in lockout of the account with this email (django-axes' failures for "
        "it); with --ip, also clear that IP address's limit. Logged in the security log."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("email", help="The address the account signs in with.")
        parser.add_argument("--ip", default="", help="Also clear this IP address's limit.")

    def handle(self, *args, email: str, ip: str, **options) -> None:
        ip = ip.strip()
        if ip:
            try:
                validate_ipv46_address(ip)
            except ValidationError as exc:
                raise CommandError(f"{ip!r} is not an IP address.") from exc
        was_locked = locked_out_until(email) is not None
        try:
            cleared = account_unlock(username=email, actor=None, ip_address=ip or None)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        state = "was locked out; unlocked" if was_locked else "was not locked out"
        self.stdout.write(f"{email.strip()}: {state} ({cleared} throttle record(s) cleared).")
