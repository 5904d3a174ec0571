"""`manage.py expire_change_requests`: mark pending change requests past their time as expired.

Reads already treat an overdue request as expired (it neither shows as pending nor blocks a new
proposal); this writes the state, so the history and the exports say so. Run it hourly from cron
or a scheduler.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from users.services import change_requests_expire


class Command(BaseCommand):
    help = "Mark pending four-eyes change requests past FOUR_EYES_TTL_HOURS as expired."

    def handle(self, *args, **options) -> None:
        expired = change_requests_expire()
        self.stdout.write(f"Expired {expired} change request(s).")
