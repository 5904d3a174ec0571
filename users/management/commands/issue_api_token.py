"""`manage.py issue_api_token EMAIL [--name NAME]`: issue an API token and print it once."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from users.models import User
from users.services import tokens


class Command(BaseCommand):
    help = (
        "Issue a JSON API token to the console user with this email and print it. The token "
        "acts as that user, with that user's roles; it is stored hashed and shown only now."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("email", help="Email of a console user (CONSOLE flag and a role).")
        parser.add_argument("--name", default="Issued from the command line", help="What uses it.")

    def handle(self, *args, email: str, name: str, **options) -> None:
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No user with email {email!r}.")
        try:
            token, secret = tokens.issue_token(user=user, name=name)
        except ValidationError as exc:
            raise CommandError(
                " ".join(message for messages in exc.message_dict.values() for message in messages)
            ) from exc
        self.stderr.write(
            f"Token “{token.name}” ({token.prefix}…) issued to {user.email}. "
            "Copy it now: it is not stored and cannot be shown again."
        )
        self.stdout.write(secret)
