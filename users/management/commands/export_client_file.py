"""`manage.py export_client_file USER_ID --as-of DATE`: a user's file as it stood at the end of
that day, as JSON (what the console's "Download JSON" gives), to standard output or a file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from users.models import User, is_user_id
from users.selectors.client_file import NotYet, as_json, client_file


class Command(BaseCommand):
    help = (
        "Write one user's file as of a date (every field rebuilt from the versions, the status "
        "timeline, every version with author and diff, a SHA-256 manifest) as JSON."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("user_id", help="The user's id (U…).")
        parser.add_argument(
            "--as-of", required=True, help="The day, YYYY-MM-DD (its end, console time zone)."
        )
        parser.add_argument("--output", default="", help="Write to this file, not stdout.")

    def handle(self, *args, user_id: str, as_of: str, output: str, **options) -> None:
        user_id = user_id.strip()
        if not is_user_id(user_id):
            raise CommandError(f"{user_id!r} is not a user id (U followed by 26 characters).")
        try:
            day = dt.date.fromisoformat(as_of.strip())
        except ValueError as exc:
            raise CommandError(f"--as-of {as_of!r} is not a date as YYYY-MM-DD.") from exc
        user = User.objects.filter(pk=user_id).first()
        if user is None:
            raise CommandError(f"No user {user_id}.")
        try:
            text = as_json(client_file(user, as_of=day, generated_by=None))
        except NotYet as exc:
            raise CommandError(str(exc)) from exc
        if output:
            try:
                Path(output).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"Cannot write {output}: {exc.strerror}.") from exc
            self.stderr.write(f"Wrote the file of {user_id} as of {day} to {output}.")
        else:
            self.stdout.write(text, ending="")
