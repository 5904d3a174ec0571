"""`manage.py rebuild_move_stats`: recompute the onboarding dashboard's summary from the status
history.

The services (and the bulk seeder) keep `StatusMoveDaily` as they write each move, and
migration 0022 filled it from the history written before; this is for history loaded some
other way (a restore, a raw import), or after `SLA_TARGET_HOURS` changed and the past moves'
at-risk / breached marks are to follow the new targets. One pass over the history, in one
transaction.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from users.services import move_stats


class Command(BaseCommand):
    help = "Recompute the onboarding dashboard's summary (StatusMoveDaily) from the status history."

    def handle(self, *args, **options) -> None:
        moves = move_stats.rebuild()
        self.stdout.write(f"Counted {moves:,} status moves into the dashboard's summary.")
