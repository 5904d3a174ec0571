"""`manage.py verify_audit`: walk every user's history chain and every actor's chain of access
rows (`users/chain.py`), recompute the access log's seals, and exit non-zero, naming the first
broken row of each chain, when a row was changed, removed or added behind the application's
back."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from users.selectors.audit import verify_access_log, verify_history

SHOWN = 20


class Command(BaseCommand):
    help = (
        "Verify the hash chains of the users' history (versions and status changes), the "
        "access log's chains (one per person who looked) and its seals; exits 1 naming the "
        "first broken row of each user whose history or each person whose accesses no longer "
        "hold, and each seal of the access log that no longer holds."
    )

    def handle(self, *args, **options) -> None:
        access = verify_access_log()
        for broken in access.breaks[:SHOWN]:
            self.stderr.write(f"BROKEN {broken}")
        if access.ok:
            self.stdout.write(
                f"Access log verified: {access.chained:,} rows in {access.actors:,} people's "
                f"chains hold, and {access.rows:,} rows in {access.seals:,} seals; "
                f"{access.unsealed:,} rows written since the last seal (manage.py "
                "seal_access_log seals them)."
            )
        result = verify_history()
        if result.ok and not access.ok:
            raise CommandError(
                f"{len(access.breaks):,} chains or seals of the access log do not hold; the "
                f"first is {access.breaks[0]}."
            )
        if result.ok:
            self.stdout.write(
                f"History verified: {result.rows:,} rows in {result.users:,} users' chains hold."
            )
            self.stdout.write(f"Digest of the chains' heads: {result.digest}")
            return
        for broken in result.breaks[:SHOWN]:
            self.stderr.write(f"BROKEN {broken}")
        more = len(result.breaks) - SHOWN
        if more > 0:
            self.stderr.write(f"... and {more:,} more.")
        raise CommandError(
            f"The history of {len(result.breaks):,} of {result.users:,} users does not hold; "
            f"the first broken row is {result.breaks[0]}."
        )
