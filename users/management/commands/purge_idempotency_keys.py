"""`manage.py purge_idempotency_keys`: delete idempotency keys past their 24-hour replay window.

Expired keys are already ignored (a reused one starts a new request); this only keeps the table
small. Run it daily from cron or a scheduler.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from users.services import idempotency


class Command(BaseCommand):
    help = "Delete idempotency keys older than 24 hours (they can no longer be replayed)."

    def handle(self, *args, **options) -> None:
        deleted = idempotency.purge_expired_keys()
        self.stdout.write(f"Deleted {deleted} expired idempotency key(s).")
