"""`manage.py seal_access_log`: seal the access log's rows written since the last seal (run it
every minute from cron); `manage.py verify_audit` recomputes the seals."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from users.services.access import SEAL_SETTLE_SECONDS, access_log_seal_all


class Command(BaseCommand):
    help = (
        "Seal the access log's rows written since the last seal and older than --settle "
        "seconds (a hash over their content, linked to the previous seal)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--settle",
            type=int,
            default=SEAL_SETTLE_SECONDS,
            help=f"Seal rows at least this many seconds old (default {SEAL_SETTLE_SECONDS}).",
        )

    def handle(self, *args, settle: int, **options) -> None:
        if settle < 0:
            raise CommandError("--settle is a number of seconds, 0 or more.")
        seals = access_log_seal_all(settle_seconds=settle)
        for seal in seals:
            self.stdout.write(f"Sealed {seal}: {seal.chain_hash}")
        if not seals:
            self.stdout.write("Nothing to seal.")
