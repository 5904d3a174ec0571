"""Load about 200 realistic demo users with months of history, plus one console login per role.

Every write goes through `users.services`, so the demo data has the versions, diffs and status
history a real record has. The history is replayed with the clock set back (see `backdated`):
users were created over the last eighteen months and moved through onboarding since.

Deterministic (a fixed random seed) and idempotent: demo users are keyed by their external id
(`DEMO-0001` ...), and a second run only resets the demo logins' password and skips the rest.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from schwifty import IBAN
from schwifty import exceptions as schwifty_errors
from stdnum.us import rtn

from console.devtools.management.commands.seed_users import draw_employment
from console.devtools.totp import device_code
from users import services, sla, validators
from users.models import CaseAssignment, ChangeRequest, FeatureFlag, Role, SavedView, Status, User
from users.selectors.assignment import OPEN_STATUSES
from users.services import assignment, factors
from users.services.access import access_log_seal_all
from users.services.saved_views import saved_view_create
from users.views.saved_views import screen_params

# (owner's role, name, screen, query string, shared with the owner's role)
DEMO_SAVED_VIEWS = (
    (
        Role.COMPLIANCE,
        "Waiting for verification in BE",
        "list",
        "status=WAITING_FOR_VERIFICATION&residency_country=BE&sort=status_changed",
        True,
    ),
    (Role.COMPLIANCE, "Verification failed", "list", "status=VERIFICATION_FAILED", False),
    (Role.COMPLIANCE, "Netherlands", "board", "residency_country=NL", False),
    (Role.BACK_OFFICE, "Belgian clients by name", "list", "residency_country=BE&sort=name", False),
    (Role.BACK_OFFICE, "Robo Advisor clients", "board", "flag=ROBO_ADVISOR", True),
    (Role.ADMIN, "Deleted users", "list", "deleted=only", False),
)
SEED = 20261123
DEFAULT_COUNT = 200
DEMO_PASSWORD = "demo-console-2026"
DEMO_LOGINS = (
    (Role.ADMIN, "admin@demo.example", "Ada", "Admin"),
    (Role.BACK_OFFICE, "backoffice@demo.example", "Bram", "Backoffice"),
    (Role.COMPLIANCE, "compliance@demo.example", "Chloé", "Compliance"),
)
# Four-eyes: what waits for approval in the demo, all proposed by the back-office login, so an
# admin signing in finds the Approvals page in use. New counter accounts (residency, IBAN of
# that country, hours ago) ...
PENDING_ACCOUNTS = (
    ("BE", "BE71096123456769", 3),
    ("NL", "NL91ABNA0417164300", 27),
    ("DE", "DE89370400440532013000", 52),
)
# ... and two new colleagues waiting for their role and console access (email, first and last
# name, role, hours ago).
PENDING_STAFF = (
    ("dana.dossier@demo.example", "Dana", "Dossier", Role.COMPLIANCE, 1),
    ("emil.ops@demo.example", "Emil", "Ops", Role.BACK_OFFICE, 30),
)

# Case assignment (issue 14.1): a second compliance officer, who shares the open cases with
# the compliance login; about a third of the open cases stay unassigned.
SECOND_REVIEWER = ("marc.review@demo.example", "Marc", "Reviewer")
ASSIGNED_SHARE = {"compliance": 0.4, "second": 0.25}

W, S, F, A, I = (  # noqa: E741 - the five statuses, short for the stories below
    Status.WAITING_FOR_VERIFICATION,
    Status.WAITING_FOR_SIGNATURE,
    Status.VERIFICATION_FAILED,
    Status.ACTIVE,
    Status.INACTIVE,
)


@dataclass(frozen=True)
class Country:
    code: str
    weight: int
    languages: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    cities: tuple[tuple[str, str], ...]  # (city, postal code)
    streets: tuple[str, ...]
    mobile_prefix: str  # E.164 prefix of mobile numbers; random digits follow
    mobile_digits: int
    banks: tuple[tuple[str, str, int], ...] = ()  # (bank code, branch code, account digits)


COUNTRIES = (
    Country(
        "BE",
        30,
        ("nl-BE", "fr-BE"),
        ("Lotte", "Arne", "Louise", "Noah", "Elise", "Wout", "Camille", "Lucas", "Marie", "Jonas"),
        ("Peeters", "Janssens", "Maes", "Jacobs", "Dubois", "Lambert", "Claes", "Willems"),
        (("Brussels", "1000"), ("Antwerp", "2000"), ("Ghent", "9000"), ("Liège", "4000")),
        ("Rue Neuve", "Meir", "Veldstraat", "Boulevard d'Avroy", "Chaussée de Wavre"),
        "+3247",
        7,
        (("001", "", 7), ("400", "", 7), ("050", "", 7), ("301", "", 7)),
    ),
    Country(
        "NL",
        18,
        ("nl-NL",),
        ("Sanne", "Daan", "Emma", "Sem", "Julia", "Bram", "Fleur", "Thijs"),
        ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit"),
        (("Amsterdam", "1012 AB"), ("Rotterdam", "3011 AD"), ("Utrecht", "3511 LX")),
        ("Damrak", "Coolsingel", "Oudegracht", "Keizersgracht"),
        "+316",
        8,
        (("ABNA", "", 10), ("INGB", "", 10), ("RABO", "", 10)),
    ),
    Country(
        "FR",
        14,
        ("fr-FR",),
        ("Manon", "Hugo", "Léa", "Louis", "Chloé", "Gabriel", "Inès", "Arthur"),
        ("Martin", "Bernard", "Durand", "Lefèvre", "Moreau", "Laurent", "Girard"),
        (("Paris", "75008"), ("Lyon", "69002"), ("Lille", "59000"), ("Bordeaux", "33000")),
        ("Rue de Rivoli", "Rue de la République", "Cours de l'Intendance"),
        "+336",
        8,
        (("30004", "00123", 11), ("20041", "01005", 11)),
    ),
    Country(
        "DE",
        12,
        ("de-DE",),
        ("Mia", "Leon", "Hannah", "Paul", "Lena", "Felix", "Anna", "Jonas"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker"),
        (("Berlin", "10117"), ("Köln", "50667"), ("München", "80331")),
        ("Friedrichstraße", "Hohe Straße", "Kaufingerstraße"),
        "+49151",
        8,
        (("37040044", "", 10), ("50010517", "", 10)),
    ),
    Country(
        "LU",
        6,
        ("fr-LU", "de-LU", "lb"),
        ("Léa", "Tom", "Emma", "Ben", "Sophie", "Luca"),
        ("Schmit", "Muller", "Weber", "Hoffmann", "Wagner", "Thill"),
        (("Luxembourg", "L-1616"), ("Esch-sur-Alzette", "L-4002")),
        ("Avenue de la Gare", "Grand-Rue"),
        "+352621",
        6,
        (("001", "", 13), ("003", "", 13)),
    ),
    Country(
        "ES",
        6,
        ("es-ES",),
        ("Lucía", "Hugo", "Martina", "Mateo", "Sofía", "Pablo"),
        ("García", "Fernández", "González", "Rodríguez", "López", "Martínez"),
        (("Madrid", "28013"), ("Barcelona", "08002"), ("Valencia", "46002")),
        ("Calle Mayor", "Passeig de Gràcia", "Calle de Colón"),
        "+346",
        8,
        (("2100", "0418", 10), ("0049", "1500", 10)),
    ),
    Country(
        "IT",
        6,
        ("it-IT",),
        ("Giulia", "Leonardo", "Sofia", "Francesco", "Aurora", "Alessandro"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano"),
        (("Milano", "20121"), ("Roma", "00186"), ("Torino", "10121")),
        ("Via Montenapoleone", "Via del Corso", "Via Roma"),
        "+39347",
        7,
        (("03069", "09606", 12), ("02008", "01600", 12)),
    ),
    Country(
        "GB",
        4,
        ("en-GB",),
        ("Olivia", "George", "Amelia", "Harry", "Isla", "Oliver"),
        ("Smith", "Jones", "Taylor", "Brown", "Williams", "Davies"),
        (("London", "EC2V 7HH"), ("Manchester", "M1 1AE"), ("Edinburgh", "EH1 1YZ")),
        ("Cheapside", "Market Street", "Princes Street"),
        "+447",
        9,
        (("BARC", "200000", 8), ("HBUK", "400515", 8)),
    ),
    Country(
        "US",
        4,
        ("en-US",),
        ("Emily", "James", "Ava", "Ethan", "Madison", "Noah"),
        ("Johnson", "Miller", "Davis", "Wilson", "Anderson", "Thomas"),
        (("New York", "10005"), ("Chicago", "60603"), ("Boston", "02110")),
        ("Wall Street", "LaSalle Street", "State Street"),
        "+1",
        10,  # area code + number, checked below with phonenumbers
    ),
)
US_ROUTING_NUMBERS = ("021000021", "026009593", "011000138", "071000013")

# Onboarding stories: (weight, [(status, reason), ...]); the first step is the creation.
KYC_OK = "Identity document and proof of address verified"
STORIES: tuple[tuple[int, tuple[tuple[str, str], ...]], ...] = (
    (14, ((W, ""),)),
    (7, ((S, "Existing customer of the bank"),)),
    (8, ((W, ""), (S, KYC_OK))),
    (5, ((W, ""), (F, "Proof of address is older than three months"))),
    (4, ((W, ""), (F, "Name on the ID card does not match the account holder"))),
    (30, ((W, ""), (S, KYC_OK), (A, ""))),
    (8, ((S, ""), (A, "Contract signed in the branch"))),
    (
        3,
        (
            (W, ""),
            (A, "Private-banking client: KYC file taken over from the bank, contract signed"),
        ),
    ),
    (
        4,
        (
            (W, ""),
            (F, "Selfie check failed"),
            (S, "Video call with the customer confirmed the identity"),
            (A, ""),
        ),
    ),
    (8, ((W, ""), (S, KYC_OK), (A, ""), (I, "Customer asked to close the account"))),
    (4, ((W, ""), (F, "Sanctions screening hit, confirmed"), (I, "Relationship ended"))),
    (2, ((W, ""), (S, KYC_OK), (A, ""), (I, "Dormant for 24 months"), (A, "Customer came back"))),
    (
        1,
        (
            (S, ""),
            (A, ""),
            (I, "Dormant for 24 months"),
            (W, "Reactivation requested; KYC older than five years must be redone"),
        ),
    ),
    (
        2,
        (
            (W, ""),
            (S, KYC_OK),
            (A, ""),
            (S, "New general terms must be signed before further investments"),
        ),
    ),
)
# The reason code (issue 14.3) of each story's move that needs one (`needs_reason_code`).
REASON_CODES = {
    "Proof of address is older than three months": "ADDRESS_NOT_VERIFIED",
    "Name on the ID card does not match the account holder": "NAME_MISMATCH",
    "Private-banking client: KYC file taken over from the bank, contract signed": "OTHER",
    "Selfie check failed": "LIVENESS_FAILED",
    "Customer asked to close the account": "CLIENT_REQUEST",
    "Sanctions screening hit, confirmed": "SANCTIONS_HIT",
    "Relationship ended": "SANCTIONS_HIT",
    "Dormant for 24 months": "INACTIVITY",
    "Reactivation requested; KYC older than five years must be redone": "DOCUMENT_EXPIRED",
    "New general terms must be signed before further investments": "OTHER",
}


# Case notes (issue 14.2) compliance wrote with such a move, by reason code ...
MOVE_NOTES = {
    "ADDRESS_NOT_VERIFIED": "Utility bill dated March; asked the client for one under 3 months.",
    "NAME_MISMATCH": "Passport reads the maiden name; asked for the marriage certificate.",
    "LIVENESS_FAILED": "Selfie video too dark, face half hidden. Client invited to retry.",
    "SANCTIONS_HIT": "Screening hit on name and year of birth; escalated to the MLRO.",
    "CLIENT_REQUEST": "Client's e-mail of today asks to close the account; payout confirmed.",
    "INACTIVITY": "No login nor position for 24 months; dormancy letter sent.",
    "DOCUMENT_EXPIRED": "Passport on file expired; a new one is needed before reactivation.",
    "OTHER": "Checked with the branch; see the file for the signed documents.",
}
# ... and on the cases still waiting, between the moves.
WAITING_NOTES = (
    "Passport scan is blurred on the second page; asked the client for a new one.",
    "Called the client: the proof of address follows by post this week.",
    "Employer letter received; source of wealth consistent with the declared salary.",
    "PEP check clear; the namesake on the list is born 20 years earlier.",
)


@dataclass
class Step:
    """One write of the replayed history, at `when`."""

    when: dt.datetime
    kind: str  # create, status, flags, update, delete, restore
    actor: str  # role whose demo login makes the change
    payload: dict[str, Any] = field(default_factory=dict)


def at(when: dt.datetime) -> Callable[[], dt.datetime]:
    """A clock stopped at `when`: the demo replays months of onboarding, and the services
    stamp each version and status change with the time their clock gives."""
    return lambda: when


def ascii_slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in text.lower() if ch.isalnum())


class Planner:
    """Draws every demo user and its history from one seeded random generator."""

    def __init__(self, seed: int, now: dt.datetime) -> None:
        self.rng = random.Random(seed)
        # Its own stream for the pace of past reviews, so the rest of the demo stays as it was.
        self.pace = random.Random(seed + 1)
        self.now = now
        self.phones: set[str] = set()

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def phone(self, country: Country) -> str:
        for _ in range(200):
            if country.code == "US":
                raw = f"+1{self.rng.choice(('212', '312', '617', '415'))}555{self.digits(4)}"
                raw = raw[:-4] + "01" + raw[-2:]  # 555-01xx: reserved for fiction
            else:
                raw = country.mobile_prefix + self.digits(country.mobile_digits)
            try:
                number = validators.phone(raw)
            except ValidationError:
                continue
            if number not in self.phones:
                self.phones.add(number)
                return number
        raise CommandError(f"Could not draw a valid {country.code} phone number.")

    def iban(self, country: Country) -> str:
        bank_code, branch_code, length = self.rng.choice(country.banks)
        fallback = None
        for _ in range(100):
            try:
                number = IBAN.generate(
                    country.code,
                    bank_code=bank_code,
                    branch_code=branch_code,
                    account_code=self.digits(length),
                )
            except schwifty_errors.SchwiftyException:
                continue
            fallback = fallback or number
            try:  # prefer accounts that also pass the national checksum
                IBAN(number.compact, validate_bban=True)
            except schwifty_errors.SchwiftyException:
                continue
            return number.compact
        if fallback is None:
            raise CommandError(f"Could not draw a {country.code} IBAN.")
        return fallback.compact

    def counter_account(self, country: Country) -> dict[str, str]:
        if country.code == "US":
            routing = self.rng.choice(US_ROUTING_NUMBERS)
            assert rtn.is_valid(routing)
            return {
                "bank_account_number": self.digits(self.rng.randint(8, 12)),
                "bank_account_number_type": "ABA",
                "bank_id": routing,
                "bank_id_type": "ABA",
            }
        iban = self.iban(country)
        account = {"bank_account_number": iban, "bank_account_number_type": "IBAN"}
        bic = validators.iban_details(iban)["bic"]
        if bic and self.rng.random() < 0.7:
            account.update(bank_id=bic, bank_id_type="BIC")
        return account

    def address(self, country: Country) -> dict[str, str]:
        city, postal_code = self.rng.choice(country.cities)
        address = {
            "line1": f"{self.rng.choice(country.streets)} {self.rng.randint(1, 240)}",
            "city": city,
            "postal_code": postal_code,
            "country_code": country.code,
        }
        if self.rng.random() < 0.2:
            address["line2"] = f"Box {self.rng.randint(1, 40)}"
        return address

    def times(self, count: int) -> list[dt.datetime]:
        """`count` moments, in order, spread over the last eighteen months."""
        start = self.now - dt.timedelta(days=self.rng.uniform(1, 540))
        moments = [start]
        for _ in range(count - 1):
            moments.append(moments[-1] + dt.timedelta(hours=self.rng.uniform(2, 24 * 25)))
        if moments[-1] > self.now - dt.timedelta(minutes=5):
            # Squeeze the story between its start and a few minutes ago.
            span = (moments[-1] - start) or dt.timedelta(seconds=1)
            room = self.now - dt.timedelta(minutes=5) - start
            moments = [start + (m - start) * (room / span) for m in moments]
        return moments

    def recent_wait(
        self, moments: list[dt.datetime], events: list, *, target: float
    ) -> list[dt.datetime]:
        """Moments for a user still in a status with an SLA: the last move comes recently, as
        on a desk that keeps up (about 3 in 4 within 75 % of the target, 1 in 8 at risk, 1 in
        10 breached), and what came after it (a correction) between it and now."""
        moves = [0] + [i + 1 for i, (kind, _, _) in enumerate(events) if kind == "status"]
        last = moves[-1]
        share = self.rng.random()
        if share < 0.77:
            fraction = self.rng.uniform(0.02, 0.7)
        elif share < 0.9:
            fraction = self.rng.uniform(0.77, 0.97)  # at risk
        else:
            fraction = self.rng.uniform(1.05, 3)  # breached
        hours = fraction * target
        entered = sla.back(self.now - dt.timedelta(minutes=10), hours=hours)
        shifted = [moment + (entered - moments[last]) for moment in moments[: last + 1]]
        after = len(moments) - last - 1
        room = self.now - dt.timedelta(minutes=5) - entered
        return shifted + [entered + room * (k + 1) / (after + 1) for k in range(after)]

    def kept_pace(
        self, moments: list[dt.datetime], first_status: str, events: list
    ) -> list[dt.datetime]:
        """Past reviews at a desk's pace: a move out of a status with an SLA target came within
        it about 4 times in 5 (1 in 8 at risk, 1 in 12 breached), so the dashboard's SLA chart
        shows a realistic share. Each move keeps its moment; the wait before it is shortened
        by bringing the entry into the status (and all before it) later, latest move first,
        so every wait is measured in business hours where it finally lies. Nothing moves
        earlier, and the last move stays where `recent_wait` put it."""
        targets = sla.targets()
        statuses = [first_status]
        moves = [0]  # the index of each status's entry in `moments`
        for i, (kind, _, payload) in enumerate(events):
            if kind == "status":
                statuses.append(payload["status"])
                moves.append(i + 1)
        moments = list(moments)
        for k in range(len(moves) - 1, 0, -1):
            left, entered, index = statuses[k - 1], moves[k - 1], moves[k]
            if left not in targets:
                continue
            share = self.pace.random()
            if share < 0.8:
                fraction = self.pace.uniform(0.05, 0.7)
            elif share < 0.92:
                fraction = self.pace.uniform(0.77, 0.97)
            else:
                fraction = self.pace.uniform(1.05, 2.5)
            start = sla.back(moments[index], hours=fraction * targets[left])
            if start <= moments[entered]:
                continue  # it was quicker than that already
            ratio = (moments[index] - start) / (moments[index] - moments[entered])
            shift = start - moments[entered]
            for j in range(entered + 1, index):
                moments[j] = moments[index] - (moments[index] - moments[j]) * ratio
            for j in range(entered + 1):
                moments[j] += shift
        return moments

    def user(self, n: int) -> list[Step]:
        rng = self.rng
        country = rng.choices(COUNTRIES, weights=[c.weight for c in COUNTRIES])[0]
        first, last = rng.choice(country.first_names), rng.choice(country.last_names)
        story = rng.choices(STORIES, weights=[w for w, _ in STORIES])[0][1]
        complete = story[-1][0] != W or len(story) > 1 or rng.random() < 0.5
        born = self.now.date() - dt.timedelta(days=rng.randint(18 * 366, 85 * 365))
        nationalities = [country.code]
        if rng.random() < 0.1:
            nationalities.append(rng.choice([c.code for c in COUNTRIES if c != country]))
        domain = rng.choice(("example.com", "example.org", "example.net"))
        data: dict[str, Any] = {
            "external_id": f"DEMO-{n:04d}",
            "first_name": first,
            "last_name": last,
            "email": f"{ascii_slug(first)}.{ascii_slug(last)}.{n}@{domain}",
            "language": rng.choice(country.languages),
            "residency_country": country.code,
            "nationalities": nationalities,
            "date_of_birth": born.isoformat(),
            "status": story[0][0],
        }
        if story[0][1]:
            data["status_reason"] = story[0][1]
        if complete:
            data.update(
                phone=self.phone(country),
                counter_account=self.counter_account(country),
                address=self.address(country),
                tax_residency={
                    "country_code": country.code,
                    "proof_type": rng.choice(("TIN", "Tax certificate")),
                    "value": self.digits(rng.choice((9, 11))),
                },
                identity=self.digits(11),
                **draw_employment(rng.random),
            )
        if rng.random() < 0.3:
            data["metadata"] = {
                "channel": rng.choice(("web", "app", "branch", "partner")),
                "campaign": rng.choice(("spring-2026", "referral", "none")),
            }

        # The writes after the creation, in time order: status moves, the product flags an
        # admin grants once the user is first active, and a few corrections by the back office.
        events: list[tuple[str, str, dict[str, Any]]] = []
        for status, reason in story[1:]:
            move = {"status": status, "reason": reason}
            if reason in REASON_CODES:
                move["reason_code"] = REASON_CODES[reason]
                if rng.random() < 0.7:
                    move["note"] = MOVE_NOTES[move["reason_code"]]
            events.append(("status", "compliance", move))
            if status == A and not any(kind == "flags" for kind, _, _ in events):
                flags = [
                    flag
                    for flag, chance in (
                        (FeatureFlag.ROBO_ADVISOR, 0.6),
                        (FeatureFlag.SELF_INVESTOR, 0.45),
                        (FeatureFlag.STORYTELLER, 0.15),
                    )
                    if rng.random() < chance
                ]
                events.append(("flags", "admin", {"flags": flags or [FeatureFlag.ROBO_ADVISOR]}))
        if story[0][0] == A or any(status == A for status, _ in story):
            data["brokerage_user_id"] = f"BRK{self.digits(7)}"
        if complete and rng.random() < 0.2:
            events.append(("update", "back_office", {"address": self.address(country)}))
        if complete and rng.random() < 0.1:
            events.append(
                ("update", "back_office", {"counter_account": self.counter_account(country)})
            )

        if story[-1][0] in (W, F) and rng.random() < 0.4:
            events.append(("note", "compliance", {"text": rng.choice(WAITING_NOTES)}))

        moments = self.times(len(events) + 1)
        if story[-1][0] in sla.targets():
            moments = self.recent_wait(moments, events, target=sla.targets()[story[-1][0]])
        moments = self.kept_pace(moments, story[0][0], events)
        steps = [Step(moments[0], "create", "back_office", {"data": data})]
        for when, (kind, actor, payload) in zip(moments[1:], events, strict=True):
            steps.append(Step(when, kind, actor, payload))
        return steps

    def plan(self, count: int) -> list[list[Step]]:
        users = [self.user(n) for n in range(1, count + 1)]
        # A few users were deleted later on, and one of them was restored.
        for n, index in enumerate(self.rng.sample(range(count), k=max(1, count // 33))):
            last = users[index][-1].when
            deleted_at = last + (self.now - last) * 0.5
            users[index].append(Step(deleted_at, "delete", "admin"))
            if n == 0:
                users[index].append(
                    Step(deleted_at + (self.now - deleted_at) * 0.5, "restore", "admin")
                )
        return users


def _create_staff(email: str, first: str, last: str, role: str, when: dt.datetime) -> User:
    """A demo member of staff: the console flag, one role, the demo password."""
    return services.user_create(
        data={
            "email": email,
            "first_name": first,
            "last_name": last,
            "feature_flags": [FeatureFlag.CONSOLE],
            "language": "en",
        },
        actor=None,
        password=DEMO_PASSWORD,
        roles=[role],
        clock=at(when),
    )


class Command(BaseCommand):
    help = (
        "Load about 200 realistic demo users with history, plus one console login per role "
        f"(password {DEMO_PASSWORD!r}). Safe to run again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where the console runs, for the login link printed at the end.",
        )

    def handle(self, *args: Any, count: int, base_url: str, **options: Any) -> None:
        if count < 1:
            raise CommandError("--count must be at least 1.")
        now = timezone.now()
        logins = self.ensure_logins(now - dt.timedelta(days=600))
        existing = set(
            User.objects.filter(external_id__startswith="DEMO-").values_list(
                "external_id", flat=True
            )
        )
        wanted = {f"DEMO-{n:04d}" for n in range(1, count + 1)}
        # Drawing the plan costs seconds; `make run` calls this on every start.
        plan = [] if wanted <= existing else Planner(SEED, now).plan(count)
        created = 0
        for steps in plan:
            if steps[0].payload["data"]["external_id"] in existing:
                continue
            with transaction.atomic():
                self.replay(steps, logins)
            created += 1

        pending = self.ensure_pending(logins, now)
        assigned = self.ensure_assignments(logins, now)
        self.ensure_saved_views(logins)

        demo = User.objects.filter(external_id__startswith="DEMO-")
        by_status = Counter(demo.values_list("status", flat=True))
        self.stdout.write(
            f"Demo users: {demo.count()} ({created} created now, "
            f"{demo.filter(deleted=True).count()} deleted). By status: "
            + ", ".join(f"{s} {by_status.get(s, 0)}" for s in Status.values)
        )
        self.stdout.write(f"Changes waiting for approval (four-eyes): {pending}.")
        self.stdout.write(f"Open cases assigned to reviewers: {assigned}.")
        # What cron's `seal_access_log` does every minute in production: the accesses of
        # earlier runs are sealed at each start.
        access_log_seal_all(settle_seconds=0)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Console: {base_url.rstrip('/')}/login/"))
        for role, email, *_ in DEMO_LOGINS:
            self.stdout.write(f"  {Role(role).label:<12} {email:<28} password: {DEMO_PASSWORD}")
        if settings.CONSOLE_MFA_REQUIRED:
            self.stdout.write(
                "Second factor: after the password the console asks for a 6-digit code. Add a "
                "login's key to an authenticator app, or print the current codes with "
                "`make codes` in another terminal:"
            )
            for role, email, *_ in DEMO_LOGINS:
                device = factors.totp_ensure(user=logins[role])
                self.stdout.write(
                    f"  {email:<28} TOTP key: {factors.totp_secret(device)}   code now: "
                    f"{device_code(device)}"
                )
        self.stdout.write(f"Raw Django admin: {base_url.rstrip('/')}/admin/ (admin login)")

    def ensure_logins(self, when: dt.datetime) -> dict[str, User]:
        """The three demo logins, created once; on every run their password is reset. Each
        comes with an authenticator (its key printed at the end) so the second factor needs
        no enrolment."""
        logins: dict[str, User] = {}
        for role, email, first, last in DEMO_LOGINS:
            with transaction.atomic():
                user = User.objects.filter(email__iexact=email).first()
                if user is None:
                    user = _create_staff(email, first, last, role, when)
                else:
                    # Someone may have played with the demo logins: make them work again. With
                    # nobody to approve it (four-eyes), this repair of the dev tool's own logins
                    # applies at once, as on a deployment that guards nothing.
                    repair = override_settings(FOUR_EYES_GUARDED=[])
                    repair.enable()
                    if user.deleted:
                        user = services.user_restore(user=user, actor=None)
                    if FeatureFlag.CONSOLE not in user.flag_names():
                        user = services.user_set_flag(
                            user=user, flag=FeatureFlag.CONSOLE, enabled=True, actor=None
                        )
                    if role not in user.role_names():
                        user = services.user_set_roles(
                            user=user, roles=[*user.role_names(), role], actor=None
                        )
                    repair.disable()
                    user = services.user_set_password(user=user, password=DEMO_PASSWORD)
                factors.totp_ensure(user=user)
            logins[role] = user
        return logins

    def ensure_saved_views(self, logins: dict[str, User]) -> None:
        """The demo logins' saved views (issue 14.7), each created once: one of compliance's
        shared with its role, so every compliance login finds it in the sidebar."""
        known = screen_params()
        for role, name, screen, query, shared in DEMO_SAVED_VIEWS:
            owner = logins[role]
            if SavedView.objects.filter(owner=owner, screen=screen, name=name).exists():
                continue
            saved_view_create(
                owner=owner,
                name=name,
                screen=screen,
                query=query,
                shared_with_role=role if shared else None,
                known_params=known,
            )

    def ensure_pending(self, logins: dict[str, User], now: dt.datetime) -> int:
        """A few pending change requests of each kind, proposed by the back-office login,
        whenever none of theirs waits (a second run adds none; once they are decided or have
        expired, the next run proposes what still differs). Returns how many wait."""
        back_office = logins[Role.BACK_OFFICE]
        waiting = ChangeRequest.objects.filter(
            proposed_by=back_office, state=ChangeRequest.State.PENDING, expires_at__gt=now
        )
        if not waiting.exists():
            with transaction.atomic():
                self._propose_pending(back_office, logins[Role.ADMIN], now)
        return ChangeRequest.objects.filter(
            state=ChangeRequest.State.PENDING, expires_at__gt=now
        ).count()

    def ensure_assignments(self, logins: dict[str, User], now: dt.datetime) -> int:
        """Open cases shared between the compliance login and a second reviewer, the rest
        unassigned, once (a run finding any assignment adds none). Returns how many open
        cases have an assignee."""
        customers = User.objects.filter(external_id__startswith="DEMO-", deleted=False)
        open_cases = customers.filter(status__in=OPEN_STATUSES)
        if not CaseAssignment.objects.filter(user__in=customers).exists():
            with transaction.atomic():
                second = self._second_reviewer(now - dt.timedelta(days=400))
                admin = logins[Role.ADMIN]
                draw = random.Random(SEED + 14)
                for user in open_cases.order_by("external_id"):
                    roll = draw.random()
                    share = ASSIGNED_SHARE["compliance"]
                    if roll < share:
                        person, by = logins[Role.COMPLIANCE], logins[Role.COMPLIANCE]
                    elif roll < share + ASSIGNED_SHARE["second"]:
                        person, by = second, admin
                    else:
                        continue
                    # Taken a little after the case entered its status, never in the future.
                    waited = now - user.status_changed_at
                    when = user.status_changed_at + min(waited / 3, dt.timedelta(hours=6))
                    assignment.case_assign(
                        user=user,
                        assignee=person,
                        actor=by,
                        expected_assignee=None,
                        clock=at(when),
                    )
        return open_cases.filter(assignee__isnull=False).count()

    def _second_reviewer(self, when: dt.datetime) -> User:
        email, first, last = SECOND_REVIEWER
        user = User.objects.filter(email__iexact=email).first()
        return user or _create_staff(email, first, last, Role.COMPLIANCE, when)

    def _propose_pending(self, back_office: User, admin: User, now: dt.datetime) -> None:
        customers = User.objects.filter(external_id__startswith="DEMO-", deleted=False)
        for country, iban, hours in PENDING_ACCOUNTS:
            user = (
                customers.filter(residency_country=country)
                .exclude(bank_account_number="")
                .order_by("external_id")
                .first()
            )
            if user is not None:
                services.user_update(
                    user=user,
                    data={"counter_account": {"bank_account_number": iban}},
                    actor=back_office,
                    change_reason="Client's letter: new bank account for payouts.",
                    clock=at(now - dt.timedelta(hours=hours)),
                )
        for email, first, last, role, hours in PENDING_STAFF:
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                user = services.user_create(
                    data={"email": email, "first_name": first, "last_name": last, "language": "en"},
                    actor=admin,
                    clock=at(now - dt.timedelta(days=4)),
                )
            clock = at(now - dt.timedelta(hours=hours))
            reason = f"Joins {Role(role).label.lower()} on Monday."
            services.user_set_roles(
                user=user, roles=[role], actor=back_office, change_reason=reason, clock=clock
            )
            services.user_set_flag(
                user=user,
                flag=FeatureFlag.CONSOLE,
                enabled=True,
                actor=back_office,
                change_reason=reason,
                clock=clock,
            )

    def replay(self, steps: list[Step], logins: dict[str, User]) -> None:
        user: User | None = None
        for step, following in itertools.zip_longest(steps, steps[1:]):
            actor, clock = logins[step.actor], at(step.when)
            if step.kind == "create":
                user = services.user_create(data=step.payload["data"], actor=actor, clock=clock)
            elif step.kind == "status":
                user = services.user_change_status(
                    user=user, actor=actor, clock=clock, **step.payload
                )
            elif step.kind == "note":
                services.case_note_add(user=user, actor=actor, clock=clock, **step.payload)
            elif step.kind == "flags":
                user = services.user_set_flags(user=user, actor=actor, clock=clock, **step.payload)
            elif step.kind == "update":
                user = services.user_update(user=user, actor=actor, data=step.payload, clock=clock)
                # A new counter account waits for a second person (four-eyes): compliance
                # approved it soon after, before the user's next change.
                later = following.when if following else timezone.now()
                decided = step.when + min(dt.timedelta(hours=2), (later - step.when) / 2)
                for request in services.proposed_changes(user):
                    services.change_request_approve(
                        change_request=request, actor=logins["compliance"], clock=at(decided)
                    )
                    user = User.objects.get(pk=user.pk)
            elif step.kind == "delete":
                user = services.user_delete(user=user, actor=actor, clock=clock)
            elif step.kind == "restore":
                user = services.user_restore(user=user, actor=actor, clock=clock)
