"""`manage.py update_user USER --set FIELD=VALUE ... [--by EMAIL] [--reason TEXT]`: change a
user's contract fields from a shell, through the same service as the console and the API.

A guarded field (four-eyes: the counter account, roles, granting CONSOLE) is proposed, not
applied: the command prints the change request, which a second person approves in the console.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from users.models import User, is_user_id
from users.services import StaleVersion, proposed_changes, user_set_roles, user_update


def _value(text: str) -> Any:
    """A JSON value when the text is one (`{"bank_account_number": "..."}`, `null`, `["BE"]`),
    else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class Command(BaseCommand):
    help = (
        "Change a user's contract fields (USER is an id or an email). Guarded fields (four-eyes) "
        "become a change request for a second person to approve in the console."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("user", help="The user's id or email.")
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="A contract field and its value, JSON for objects and lists: "
            'counter_account=\'{"bank_account_number": "BE71096123456769"}\', roles=\'["admin"]\'.',
        )
        parser.add_argument("--by", default="", help="Email of the person making the change.")
        parser.add_argument("--reason", default="", help="Why (kept with a change request).")

    def handle(self, *args, user: str, set: list[str], by: str, reason: str, **options) -> None:
        target = self._user(user)
        actor = self._user(by) if by else None
        data: dict[str, Any] = {}
        for item in set:
            name, sep, text = item.partition("=")
            if not sep or not name.strip():
                raise CommandError(f"--set takes FIELD=VALUE, not {item!r}.")
            data[name.strip()] = _value(text)
        if not data:
            raise CommandError("Nothing to change: give at least one --set FIELD=VALUE.")
        roles = data.pop("roles", None)
        try:
            saved = target
            proposed = []
            if data:
                saved = user_update(user=target, data=data, actor=actor, change_reason=reason)
                proposed += proposed_changes(saved)
            if roles is not None:
                if not isinstance(roles, list):
                    raise CommandError("roles takes a JSON list: roles='[\"compliance\"]'.")
                saved = user_set_roles(user=saved, roles=roles, actor=actor, change_reason=reason)
                proposed += proposed_changes(saved)
        except (ValidationError, StaleVersion) as exc:
            messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            raise CommandError(" ".join(messages)) from exc
        self.stdout.write(f"{saved.display_name} ({saved.pk}) is at version {saved.version}.")
        for request in proposed:
            self.stdout.write(
                f"Waiting for approval by a second person: change request {request.pk} "
                f"({request.get_kind_display()}), until {request.expires_at:%Y-%m-%d %H:%M} UTC."
            )

    def _user(self, text: str) -> User:
        text = text.strip()
        found = (
            User.objects.filter(pk=text).first()
            if is_user_id(text)
            else User.objects.filter(email__iexact=text).first()
        )
        if found is None:
            raise CommandError(f"No user {text!r}.")
        return found
