"""Load many realistic users fast: `manage.py seed_users --count 1000000`.

Every user comes with what the services would have written for it: version 1 with the creation
diff, one version and one status-history row per status move (off-flow moves with a reason; a
reason code where a move needs one, also on the user's row as `status_reason_code`), a
version for a soft delete, and the feature-flag grants. Values pass the validators (valid IBANs
with mod-97 check digits and, where the country has one, the national check digits; valid phone
numbers; BCP 47 languages; ISO countries) and every database constraint.

PostgreSQL: rows are generated in Python from precomputed pools and streamed with
`COPY ... FROM STDIN`, one transaction per batch; the secondary (non-unique) indexes are dropped
for the load and rebuilt afterwards, then the tables are vacuumed and analysed so that the
planner and index-only scans see the new rows. Other databases (SQLite in tests) take the same
rows through `bulk_create`, which is fine for a few thousand users.

The random generator is seeded (`--seed`) and dates are relative to `--until` (default: today,
midnight UTC), so the same arguments on the same day give the same data.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import random
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from schwifty import IBAN
from ulid import ULID

from users import chain, contract, services
from users.models import (
    EMPLOYED_STATUSES,
    EmploymentStatus,
    FeatureFlag,
    FeatureFlagGrant,
    IncomeRange,
    Industry,
    SourceOfWealth,
    Status,
    StatusChange,
    User,
    UserVersion,
)
from users.services import move_stats

UTC = dt.UTC
DAY = 86400.0
YEARS_OF_HISTORY = 5

# Columns written for each table, in COPY order. Columns left out take their NULL default
# (last_login, version_authored_by_user_id, author_id, changed_by_id, granted_by_id): the seed
# stands for the platform's own imports, which have no human author. The user's columns are
# the auth ones, then every column the contract's registry stores a field in, then the record's.
AUTH_COLUMNS = ("id", "password", "is_superuser")
RECORD_COLUMNS = (
    "status_changed_at",
    "creation_datetime",
    "version",
    "version_datetime",
    "history_hash",
    "status_reason_code",
)
FIELD_COLUMNS = tuple(
    column for field in contract.FIELDS.values() if field.input for column in field.columns
)
USER_COLUMNS = (*AUTH_COLUMNS, *FIELD_COLUMNS, *RECORD_COLUMNS, "deleted")
VERSION_COLUMNS = ("user_id", "version", "created_at", "changes", "chain_hash")
STATUS_COLUMNS = (
    "user_id",
    "version",
    "from_status",
    "to_status",
    "changed_at",
    "reason",
    "reason_code_id",
    "off_flow",
    "chain_hash",
)
GRANT_COLUMNS = ("user_id", "flag", "granted_at")
# Below this many users, rebuilding the secondary indexes costs more than keeping them.
DROP_INDEXES_FROM = 100_000
SEEDED_TABLES = ("users_user", "users_userversion", "users_statuschange", "users_featureflaggrant")

# --- pools -------------------------------------------------------------------------------------


@dataclass
class CountryProfile:
    code: str
    weight: int
    # Phone numbers are prefix + a counter of `phone_digits` digits, scrambled by a bijection
    # so that neighbours do not look sequential; every number in the range is a valid mobile.
    phone_prefix: str
    phone_digits: int
    languages: tuple[tuple[str, int], ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    cities: tuple[tuple[str, str], ...]
    streets: tuple[str, ...]
    number_first: bool = False
    banks: list[tuple[str, str, str]] = field(default_factory=list)  # (bank, branch, bic)


SHARED_FIRST = ("Anna", "Hannah", "Johanna", "Marianne", "Joanna", "Annika", "Leanne", "Daniel")
SHARED_LAST = ("Hermann", "Brennan", "Mann", "Hoffmann", "Lehmann")

COUNTRIES = (
    CountryProfile(
        "BE",
        30,
        "+3247",
        7,
        (("nl-BE", 50), ("fr-BE", 38), ("en", 8), ("de", 2), ("", 2)),
        (
            "Lucas",
            "Noah",
            "Liam",
            "Arthur",
            "Louis",
            "Jules",
            "Finn",
            "Victor",
            "Wout",
            "Emma",
            "Olivia",
            "Louise",
            "Marie",
            "Elise",
            "Anne",
            "Annelies",
            "Lotte",
            "Jan",
            "Pieter",
            "Koen",
            "Sofie",
            "Nathalie",
            "Céline",
            "Frédéric",
            "Thibault",
        ),
        (
            "Peeters",
            "Janssens",
            "Maes",
            "Jacobs",
            "Mertens",
            "Willems",
            "Claes",
            "Goossens",
            "Wouters",
            "De Smet",
            "Dubois",
            "Lambert",
            "Dupont",
            "Vannieuwenhuyse",
            "Mannaerts",
            "Van Damme",
            "De Backer",
            "Lemaire",
            "Desmet",
            "Verbruggen",
        ),
        (
            ("Brussel", "1000"),
            ("Antwerpen", "2000"),
            ("Gent", "9000"),
            ("Leuven", "3000"),
            ("Liège", "4000"),
            ("Namur", "5000"),
            ("Brugge", "8000"),
            ("Charleroi", "6000"),
            ("Hasselt", "3500"),
            ("Mechelen", "2800"),
        ),
        ("Kerkstraat", "Stationsstraat", "Rue de la Loi", "Dorpstraat", "Avenue Louise"),
    ),
    CountryProfile(
        "NL",
        18,
        "+3161",
        7,
        (("nl", 88), ("en", 10), ("", 2)),
        (
            "Daan",
            "Sem",
            "Lars",
            "Bram",
            "Thijs",
            "Ruben",
            "Sanne",
            "Femke",
            "Anouk",
            "Fleur",
            "Lieke",
            "Joost",
            "Maarten",
            "Annemiek",
            "Marieke",
            "Jannie",
        ),
        (
            "de Jong",
            "Jansen",
            "de Vries",
            "van den Berg",
            "van Dijk",
            "Bakker",
            "Visser",
            "Smit",
            "Meijer",
            "de Boer",
            "Mulder",
            "Bos",
            "Vos",
            "Hendriks",
            "Dekker",
        ),
        (
            ("Amsterdam", "1011 AB"),
            ("Rotterdam", "3011 AD"),
            ("Utrecht", "3511 AA"),
            ("Den Haag", "2511 BT"),
            ("Eindhoven", "5611 AB"),
            ("Groningen", "9711 AA"),
        ),
        ("Hoofdstraat", "Kerkstraat", "Prinsengracht", "Molenweg", "Schoolstraat"),
    ),
    CountryProfile(
        "DE",
        16,
        "+49151",
        8,
        (("de", 90), ("en", 8), ("", 2)),
        (
            "Ben",
            "Paul",
            "Leon",
            "Felix",
            "Jonas",
            "Lukas",
            "Mia",
            "Emilia",
            "Lena",
            "Lea",
            "Katharina",
            "Susanne",
            "Stefan",
            "Jürgen",
            "Hans",
            "Annegret",
            "Jörg",
        ),
        (
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schulz",
            "Koch",
            "Richter",
            "Klein",
            "Wolf",
            "Neumann",
            "Baumann",
        ),
        (
            ("Berlin", "10115"),
            ("München", "80331"),
            ("Hamburg", "20095"),
            ("Köln", "50667"),
            ("Frankfurt am Main", "60311"),
            ("Stuttgart", "70173"),
        ),
        ("Hauptstraße", "Schulstraße", "Bahnhofstraße", "Gartenstraße", "Lindenweg"),
    ),
    CountryProfile(
        "FR",
        14,
        "+3361",
        7,
        (("fr", 92), ("en", 6), ("", 2)),
        (
            "Gabriel",
            "Léo",
            "Raphaël",
            "Louis",
            "Jules",
            "Jade",
            "Louise",
            "Ambre",
            "Alice",
            "Chloé",
            "Camille",
            "Amélie",
            "Nicolas",
            "Julien",
            "Anaïs",
            "Yann",
        ),
        (
            "Martin",
            "Bernard",
            "Thomas",
            "Petit",
            "Robert",
            "Richard",
            "Durand",
            "Dubois",
            "Moreau",
            "Laurent",
            "Simon",
            "Michel",
            "Lefèvre",
            "Leroy",
            "Roux",
            "Giovanni",
        ),
        (
            ("Paris", "75008"),
            ("Lyon", "69002"),
            ("Marseille", "13001"),
            ("Toulouse", "31000"),
            ("Lille", "59000"),
            ("Bordeaux", "33000"),
        ),
        ("rue de la République", "avenue Jean Jaurès", "rue Victor Hugo", "boulevard Voltaire"),
        number_first=True,
    ),
    CountryProfile(
        "LU",
        4,
        "+352621",
        6,
        (("fr-LU", 40), ("de-LU", 25), ("lb", 25), ("en", 10)),
        ("Luc", "Tom", "Max", "Léa", "Emma", "Sophie", "Laura", "Gilles", "Anne", "Joé"),
        ("Schmit", "Muller", "Weber", "Hoffmann", "Wagner", "Thill", "Schroeder", "Reuter"),
        (("Luxembourg", "L-1118"), ("Esch-sur-Alzette", "L-4002"), ("Differdange", "L-4501")),
        ("Grand-Rue", "Avenue de la Liberté", "Rue de Hollerich"),
    ),
    CountryProfile(
        "GB",
        8,
        "+4474",
        8,
        (("en-GB", 95), ("en", 5)),
        (
            "Oliver",
            "George",
            "Harry",
            "Jack",
            "Charlie",
            "Amelia",
            "Isla",
            "Ava",
            "Emily",
            "Sophie",
            "Grace",
            "Dannielle",
            "Joanne",
            "Ian",
            "Siobhan",
        ),
        (
            "Smith",
            "Jones",
            "Taylor",
            "Brown",
            "Williams",
            "Wilson",
            "Johnson",
            "Davies",
            "Robinson",
            "Wright",
            "Thompson",
            "Evans",
            "O'Brien",
            "Bennett",
            "Shannon",
        ),
        (
            ("London", "SW1A 1AA"),
            ("Manchester", "M1 1AE"),
            ("Edinburgh", "EH1 1YZ"),
            ("Bristol", "BS1 4DJ"),
            ("Leeds", "LS1 1UR"),
        ),
        ("High Street", "Station Road", "Church Lane", "Victoria Road"),
        number_first=True,
    ),
    CountryProfile(
        "ES",
        6,
        "+346",
        8,
        (("es", 85), ("ca", 10), ("en", 5)),
        (
            "Hugo",
            "Martín",
            "Lucas",
            "Mateo",
            "Lucía",
            "Sofía",
            "Martina",
            "María",
            "Juan",
            "Javier",
            "Carmen",
            "Ana",
            "Núria",
            "Jordi",
            "Susana",
        ),
        (
            "García",
            "Rodríguez",
            "González",
            "Fernández",
            "López",
            "Martínez",
            "Sánchez",
            "Pérez",
            "Gómez",
            "Martín",
            "Jiménez",
            "Ruiz",
            "Hernández",
            "Navarro",
        ),
        (
            ("Madrid", "28013"),
            ("Barcelona", "08001"),
            ("Valencia", "46002"),
            ("Sevilla", "41001"),
            ("Bilbao", "48001"),
        ),
        ("Calle Mayor", "Gran Vía", "Calle de Alcalá", "Avenida de la Constitución"),
        number_first=False,
    ),
    CountryProfile(
        "US",
        4,
        "+12122",
        6,
        (("en-US", 85), ("es-US", 10), ("en", 5)),
        (
            "James",
            "Michael",
            "Robert",
            "John",
            "David",
            "Mary",
            "Patricia",
            "Jennifer",
            "Linda",
            "Elizabeth",
            "Ann",
            "Susan",
            "Brianna",
            "Dianne",
            "Shannon",
        ),
        (
            "Smith",
            "Johnson",
            "Williams",
            "Brown",
            "Jones",
            "Miller",
            "Davis",
            "Wilson",
            "Anderson",
            "Taylor",
            "Thomas",
            "Moore",
            "Jackson",
            "Flanagan",
        ),
        (("New York", "10001"), ("Boston", "02108"), ("Chicago", "60601")),
        ("Main Street", "Broadway", "Park Avenue", "Elm Street"),
        number_first=True,
    ),
)
# US counter accounts are ABA: real routing numbers (their checksum is what is validated).
ABA_ROUTING_NUMBERS = ("021000021", "026009593", "011000138", "121000358", "322271627")

EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
CHANNELS = ("branch", "web", "app", "partner")
OFF_FLOW_REASONS = (
    "KYC provider false negative; documents re-checked manually by compliance.",
    "Customer signed on paper at the branch; signature scanned into the file.",
    "Reopened on the customer's request after a closed account review.",
)
# Reason codes (issue 14.3, seeded by migration 0017) of the moves that need one: into
# VERIFICATION_FAILED, into INACTIVE (from ACTIVE; from VERIFICATION_FAILED), off the flow.
FAILED_CODES = (
    "DOCUMENT_EXPIRED",
    "ADDRESS_NOT_VERIFIED",
    "NAME_MISMATCH",
    "LIVENESS_FAILED",
    "DOCUMENT_UNREADABLE",
    "SANCTIONS_HIT",
    "PEP_REVIEW",
    "SOURCE_OF_WEALTH",
)
INACTIVE_CODES = ("INACTIVITY", "CLIENT_REQUEST", "INACTIVITY", "DUPLICATE_ACCOUNT")
CLOSED_AFTER_FAILURE_CODES = ("FRAUD_SUSPICION", "SANCTIONS_HIT", "DUPLICATE_ACCOUNT")
OFF_FLOW_CODE = "MANUAL_OVERRIDE"
ACTIVE_FLAG_CHANCES = (
    (FeatureFlag.ROBO_ADVISOR.value, 0.40),
    (FeatureFlag.SELF_INVESTOR.value, 0.55),
    (FeatureFlag.STORYTELLER.value, 0.12),
)

WFV = Status.WAITING_FOR_VERIFICATION.value
WFS = Status.WAITING_FOR_SIGNATURE.value
VF = Status.VERIFICATION_FAILED.value
ACTIVE = Status.ACTIVE.value
INACTIVE = Status.INACTIVE.value
# Final-status mix by age: the recent sign-ups are still in onboarding, the old ones mostly done.
RECENT_MIX = ((WFV, 40), (WFS, 28), (VF, 10), (ACTIVE, 20), (INACTIVE, 2))
SETTLED_MIX = ((ACTIVE, 74), (INACTIVE, 14), (VF, 5), (WFV, 4), (WFS, 3))
RECENT_DAYS = 45

_LETTER_DIGITS = str.maketrans({chr(c): str(c - 55) for c in range(ord("A"), ord("Z") + 1)})
_COPY_ESCAPE = re.compile(r"[\\\t\n\r]")


def _wheel(weighted: tuple[tuple[Any, int], ...]) -> list[Any]:
    """A list in which each value appears `weight` times: `wheel[int(random() * len)]`."""
    return [value for value, weight in weighted for _ in range(weight)]


EMPLOYMENT_MIX = (
    (EmploymentStatus.FULL_TIME, 52),
    (EmploymentStatus.SELF_EMPLOYED, 12),
    (EmploymentStatus.PART_TIME, 10),
    (EmploymentStatus.RETIRED, 14),
    (EmploymentStatus.STUDENT, 5),
    (EmploymentStatus.UNEMPLOYED, 4),
    (EmploymentStatus.HOMEMAKER, 3),
)

_EMPLOYMENT_WHEEL = _wheel(EMPLOYMENT_MIX)


def draw_employment(random: Callable[[], float]) -> dict[str, Any]:
    """An employment and source-of-wealth block that passes `validators.employment`."""
    status = _EMPLOYMENT_WHEEL[int(random() * len(_EMPLOYMENT_WHEEL))]
    incomes = IncomeRange.values
    income = incomes[min(int(random() * random() * len(incomes) * 1.6), len(incomes) - 1)]
    sources = {
        EmploymentStatus.SELF_EMPLOYED: SourceOfWealth.BUSINESS,
        EmploymentStatus.RETIRED: SourceOfWealth.PENSION,
    }.get(status, SourceOfWealth.SALARY)
    extra = SourceOfWealth.values[int(random() * len(SourceOfWealth.values))]
    industries = Industry.values
    return {
        "employment_status": status,
        "income_range": income,
        "sources_of_wealth": [v for v in SourceOfWealth.values if v in (sources, extra)],
        "industry": industries[int(random() * len(industries))]
        if status in EMPLOYED_STATUSES
        else "",
    }


def _ascii_slug(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", folded.lower())


def iban_check_digits(country_code: str, bban: str) -> str:
    """ISO 13616 check digits: 98 - (BBAN + country + '00') mod 97, letters as 10..35."""
    numeric = (bban + country_code + "00").translate(_LETTER_DIGITS)
    return f"{98 - int(numeric) % 97:02d}"


def _spanish_check_digit(digits: str) -> str:
    weights = (1, 2, 4, 8, 5, 10, 9, 7, 3, 6)
    value = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return str({11: 0, 10: 1}.get(value, value))


def make_bban(country: str, bank: str, branch: str, account_number: int) -> str:
    """A BBAN in the country's layout, with its national check digits where it has them."""
    if country == "BE":
        body = f"{bank}{account_number:07d}"
        return f"{body}{int(body) % 97 or 97:02d}"
    if country == "NL":
        return f"{bank}{account_number:010d}"
    if country == "DE":
        return f"{bank}{account_number:010d}"
    if country == "FR":
        account = f"{account_number:011d}"
        key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
        return f"{bank}{branch}{account}{key:02d}"
    if country == "LU":
        return f"{bank}{account_number:013d}"
    if country == "GB":
        return f"{bank}{branch}{account_number:08d}"
    if country == "ES":
        account = f"{account_number:010d}"
        checks = _spanish_check_digit(f"00{bank}{branch}") + _spanish_check_digit(account)
        return f"{bank}{branch}{checks}{account}"
    raise ValueError(f"no BBAN layout for {country}")


def make_iban(country: str, bank: str, branch: str, account_number: int) -> str:
    bban = make_bban(country, bank, branch, account_number)
    return f"{country}{iban_check_digits(country, bban)}{bban}"


def _bank_pool(country: str, rng: random.Random, size: int = 12) -> list[tuple[str, str, str]]:
    """Real banks of `country` from schwifty's registry: (bank code, branch code, BIC)."""
    banks: dict[tuple[str, str], str] = {}
    for _ in range(size * 40):
        sample = IBAN.random(country, random=rng)
        bic = sample.bic
        if bic is None or bic.country_code != country:
            continue
        banks.setdefault((sample.bank_code, sample.branch_code), str(bic))
        if len(banks) >= size:
            break
    if not banks:
        raise CommandError(f"schwifty knows no bank with a BIC in {country}.")
    return [(bank, branch, bic) for (bank, branch), bic in sorted(banks.items())]


def _scramble(counter: int, digits: int) -> int:
    """A bijection on [0, 10**digits): unique counters stay unique but stop looking serial."""
    modulus = 10**digits
    return (counter * 7_919 + 12_345) % modulus  # 7919 is prime and coprime with 10


# --- row generation ----------------------------------------------------------------------------


class _Row(SimpleNamespace):
    """A user row being built: the registry's `assign` sets its columns as on a model."""

    def values(self) -> tuple:
        return tuple(getattr(self, column) for column in USER_COLUMNS)


class _History:
    """One user's history rows, appended to the batch in order with their chain hashes
    (`users/chain.py`, as the services write them; the seed has no human author)."""

    def __init__(self, user_id: str, batch: Batch) -> None:
        self.user_id = user_id
        self.batch = batch
        self.head = chain.GENESIS

    def version(self, version: int, at: dt.datetime, changes: dict) -> None:
        content = chain.version_content(
            user_id=self.user_id, version=version, at=at, author_id=None, changes=changes
        )
        self.head = chain.link(self.head, content)
        self.batch.versions.append((self.user_id, version, at, changes, self.head))

    def status_change(
        self,
        version: int,
        from_status: str,
        to_status: str,
        at: dt.datetime,
        reason: str,
        off_flow: bool,
        reason_code: str | None = None,
    ) -> None:
        content = chain.status_content(
            user_id=self.user_id,
            version=version,
            from_status=from_status,
            to_status=to_status,
            at=at,
            by_id=None,
            reason=reason,
            off_flow=off_flow,
            reason_code=reason_code,
        )
        self.head = chain.link(self.head, content)
        self.batch.status_changes.append(
            (
                self.user_id,
                version,
                from_status,
                to_status,
                at,
                reason,
                reason_code,
                off_flow,
                self.head,
            )
        )


@dataclass
class Batch:
    users: list[tuple] = field(default_factory=list)
    versions: list[tuple] = field(default_factory=list)
    status_changes: list[tuple] = field(default_factory=list)
    grants: list[tuple] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return len(self.users) + len(self.versions) + len(self.status_changes) + len(self.grants)


class UserGenerator:
    """Yields batches of rows for `count` users created over five years before `until`."""

    def __init__(
        self,
        *,
        count: int,
        seed: int,
        until: dt.datetime,
        start_index: int = 0,
        taken: dict[str, set[str]] | None = None,
    ) -> None:
        self.count = count
        self.rng = random.Random(seed * 1_000_003 + start_index)
        self.until = until.timestamp()
        self.start = self.until - YEARS_OF_HISTORY * 365.25 * DAY
        self.start_index = start_index
        self.taken = taken or {"email": set(), "phone": set(), "external_id": set()}
        self.countries = list(COUNTRIES)
        bank_rng = random.Random(seed)
        for country in self.countries:
            if country.code != "US" and not country.banks:
                country.banks = _bank_pool(country.code, bank_rng)
        self.country_wheel = _wheel(tuple((c, c.weight) for c in self.countries))
        self.language_wheels = {c.code: _wheel(c.languages) for c in self.countries}
        self.recent_wheel = _wheel(RECENT_MIX)
        self.settled_wheel = _wheel(SETTLED_MIX)
        self.slugs = {
            name: _ascii_slug(name)
            for c in self.countries
            for name in (*c.first_names, *c.last_names, *SHARED_FIRST, *SHARED_LAST)
        }
        self.passwords = ["!" + f"{self.rng.getrandbits(200):050x}"[:40] for _ in range(256)]
        self.phone_counters = {c.code: itertools.count(start_index) for c in self.countries}
        self.account_counter = itertools.count(start_index + 1)
        for country in self.countries:
            capacity = 10**country.phone_digits
            if start_index + count * country.weight // 50 > capacity:
                raise CommandError(
                    f"--count {count} exceeds the phone-number range kept for {country.code} "
                    f"({capacity:,} numbers)."
                )

    def batches(self, size: int) -> Iterator[Batch]:
        batch = Batch()
        for offset in range(self.count):
            self._user(offset, batch)
            if len(batch.users) >= size:
                yield batch
                batch = Batch()
        if batch.users:
            yield batch

    def _unique(self, kind: str, value: str) -> bool:
        taken = self.taken[kind]
        if value in taken:
            return False
        if taken:  # only a top-up of a non-empty table needs to remember what it made
            taken.add(value)
        return True

    def _phone(self, country: CountryProfile) -> str:
        while True:
            counter = next(self.phone_counters[country.code])
            number = _scramble(counter, country.phone_digits)
            phone = f"{country.phone_prefix}{number:0{country.phone_digits}d}"
            if self._unique("phone", phone):
                return phone

    def _user(self, offset: int, batch: Batch) -> None:
        rnd = self.rng.random
        k = self.start_index + offset
        # Creation times grow denser towards `until` (the platform grows); monotonic in k, so
        # ULIDs, and thus primary keys, arrive in order.
        created = self.start + (self.until - self.start) * math.sqrt((offset + rnd()) / self.count)
        age_days = (self.until - created) / DAY
        country = self.country_wheel[int(rnd() * len(self.country_wheel))]
        cc = country.code
        ms = int(created * 1000)
        user_id = "U" + str(ULID.from_bytes(ms.to_bytes(6, "big") + self.rng.randbytes(10)))

        first_pool = country.first_names if rnd() < 0.9 else SHARED_FIRST
        last_pool = country.last_names if rnd() < 0.93 else SHARED_LAST
        first = first_pool[int(rnd() * len(first_pool))]
        last = last_pool[int(rnd() * len(last_pool))]
        if rnd() < 0.01:
            first = ""  # a few records from imports carry only a family name

        email = None
        if rnd() < 0.97:
            local = f"{self.slugs.get(first, '') or 'client'}.{self.slugs[last]}{k}"
            domain = EMAIL_DOMAINS[k % 3]
            email = f"{local}@{domain}"
            if rnd() < 0.05:
                email = f"{local.title()}@{domain.title()}"  # people type their own casing
            if not self._unique("email", email.lower()):
                email = None
        phone = self._phone(country) if rnd() < 0.88 else None
        external_id = None
        if rnd() < 0.45:
            candidate = f"BNK-{_scramble(k, 10):010d}"
            external_id = candidate if self._unique("external_id", candidate) else None

        wheel = self.recent_wheel if age_days < RECENT_DAYS else self.settled_wheel
        final = wheel[int(rnd() * len(wheel))]
        path, off_flow_at = self._path(final)
        onboarded = final in (ACTIVE, INACTIVE)

        language = self.language_wheels[cc][int(rnd() * len(self.language_wheels[cc]))]
        birth_year = 1945 + int(rnd() * 62)
        date_of_birth = dt.date(birth_year, 1 + int(rnd() * 12), 1 + int(rnd() * 28))
        nationalities = [cc] if rnd() < 0.9 else [cc, self.countries[int(rnd() * 8)].code]
        if nationalities[-1] == cc and len(nationalities) == 2:
            nationalities = [cc]
        city, postal_code = country.cities[int(rnd() * len(country.cities))]
        street = country.streets[int(rnd() * len(country.streets))]
        number = 1 + int(rnd() * 180)
        address = None
        if onboarded or rnd() < 0.5:
            address = {
                "line1": f"{number} {street}" if country.number_first else f"{street} {number}",
                "city": city,
                "postal_code": postal_code,
                "country_code": cc,
            }
            if rnd() < 0.15:
                address["line2"] = f"Apt {1 + int(rnd() * 40)}"
        tax_residency = None
        if onboarded and rnd() < 0.7:
            tax_residency = {"country_code": cc, "proof_type": "TIN", "value": f"{cc}{k:011d}"}
        identity = f"{date_of_birth:%y%m%d}-{k % 1000:03d}-{k % 97:02d}" if rnd() < 0.5 else ""
        metadata = {"acquisition_channel": CHANNELS[k % 4]} if rnd() < 0.1 else {}
        brokerage_user_id = f"BRK{k:09d}" if onboarded else ""
        idp_user_id = (
            str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            if onboarded or rnd() < 0.3
            else ""
        )

        counter_account = None
        if onboarded or rnd() < 0.4:
            account_number = next(self.account_counter)
            if cc == "US":
                routing = ABA_ROUTING_NUMBERS[account_number % len(ABA_ROUTING_NUMBERS)]
                counter_account = {
                    "bank_account_number": f"{account_number:010d}",
                    "bank_account_number_type": "ABA",
                    "bank_id": routing,
                    "bank_id_type": "ABA",
                }
            else:
                bank, branch, bic = country.banks[int(rnd() * len(country.banks))]
                counter_account = {
                    "bank_account_number": make_iban(cc, bank, branch, account_number),
                    "bank_account_number_type": "IBAN",
                    "bank_id": bic if rnd() < 0.8 else None,
                    "bank_id_type": None,
                }
                if counter_account["bank_id"]:
                    counter_account["bank_id_type"] = "BIC"

        flags = []
        if onboarded:
            flags = [flag for flag, chance in ACTIVE_FLAG_CHANCES if rnd() < chance]
        deleted = rnd() < 0.01

        # History: version 1 is the creation at the first status, then one version per move.
        created_dt = dt.datetime.fromtimestamp(created, UTC)
        snapshot = {
            "external_id": external_id,
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": phone,
            "brokerage_user_id": brokerage_user_id,
            "idp_user_id": idp_user_id,
            "language": language,
            "counter_account": counter_account,
            "feature_flags": flags,
            "status": path[0],
            "date_of_birth": date_of_birth.isoformat(),
            "residency_country": cc,
            "nationalities": nationalities,
            "address": address,
            "tax_residency": tax_residency,
            "identity": identity,
            "metadata": metadata,
            **(draw_employment(rnd) if onboarded else {}),
        }
        creation_diff = services.creation_changes(snapshot)
        history = _History(user_id, batch)
        history.version(1, created_dt, creation_diff)
        history.status_change(1, "", path[0], created_dt, "", False)
        for flag in flags:
            batch.grants.append((user_id, flag, created_dt))

        version = 1
        moment = created
        reason_code = None
        for index in range(1, len(path)):
            from_status, to_status = path[index - 1], path[index]
            moment = self._later(moment, to_status)
            version += 1
            at = dt.datetime.fromtimestamp(moment, UTC)
            off_flow = index == off_flow_at
            reason = OFF_FLOW_REASONS[k % len(OFF_FLOW_REASONS)] if off_flow else ""
            reason_code = _reason_code(k + index, from_status, to_status, off_flow)
            history.version(version, at, {"status": [from_status, to_status]})
            history.status_change(
                version, from_status, to_status, at, reason, off_flow, reason_code
            )
        status_changed_at = dt.datetime.fromtimestamp(moment, UTC)
        if deleted:
            moment += (self.until - moment) * rnd()
            version += 1
            history.version(version, dt.datetime.fromtimestamp(moment, UTC), _DELETED_DIFF)
        version_datetime = dt.datetime.fromtimestamp(moment, UTC)

        row = _Row(
            id=user_id,
            password=self.passwords[k & 255],
            is_superuser=False,
            status_changed_at=status_changed_at,
            creation_datetime=created_dt,
            version=version,
            version_datetime=version_datetime,
            history_hash=history.head,
            status_reason_code=reason_code or "",
        )
        for name in contract.INPUT_FIELDS:
            field = contract.FIELDS[name]
            field.assign(row, snapshot.get(name, field.empty))
        row.status = final
        row.deleted = deleted
        batch.users.append(row.values())

    def _path(self, final: str) -> tuple[list[str], int]:
        """The statuses a user went through to reach `final`, and the off-flow step (or -1)."""
        rnd = self.rng.random
        start = WFS if rnd() < 0.25 else WFV
        if final == WFV:
            return [WFV], -1
        if final == WFS:
            return ([WFS] if start == WFS else [WFV, WFS]), -1
        if final == VF:
            return [WFV, VF], -1
        onboarding = [WFS] if start == WFS else [WFV, WFS]
        if final == ACTIVE:
            if rnd() < 0.006:
                return [WFV, VF, ACTIVE], 2  # manual override of a failed KYC, with a reason
            path = [*onboarding, ACTIVE]
            if rnd() < 0.08:
                path += [INACTIVE, ACTIVE]
            return path, -1
        if rnd() < 0.2:
            return [WFV, VF, INACTIVE], -1
        return [*onboarding, ACTIVE, INACTIVE], -1

    def _later(self, moment: float, to_status: str) -> float:
        """When the next move happened: typical delays, never after `until`."""
        rnd = self.rng.random
        if to_status in (WFS, VF):
            delay = (0.05 + rnd() * 6) * DAY
        elif to_status == ACTIVE:
            delay = (0.1 + rnd() * 10) * DAY
        else:
            delay = (20 + rnd() * 500) * DAY
        remaining = self.until - moment
        if delay >= remaining:
            delay = remaining * (0.2 + 0.7 * rnd())
        return moment + delay


_DELETED_DIFF = {"deleted": [False, True]}


def _reason_code(n: int, from_status: str, to_status: str, off_flow: bool) -> str | None:
    """The reason code of a seeded move (None when it needs none), drawn by `n`."""
    if off_flow:
        return OFF_FLOW_CODE
    if to_status == VF:
        return FAILED_CODES[n % len(FAILED_CODES)]
    if to_status == INACTIVE:
        codes = CLOSED_AFTER_FAILURE_CODES if from_status == VF else INACTIVE_CODES
        return codes[n % len(codes)]
    return None


# --- writing -----------------------------------------------------------------------------------


def _copy_value(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is str:
        text = value
    elif kind is bool:
        return "t" if value else "f"
    elif kind is int:
        return str(value)
    elif kind is dt.datetime or kind is dt.date:
        return value.isoformat()
    elif isinstance(value, str):  # a choice's enum member: its value, not its JSON
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if _COPY_ESCAPE.search(text):
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        text = text.replace("\r", "\\r")
    return text


def _copy_text(rows: list[tuple]) -> str:
    """Rows in COPY's text format, whatever their column types (the generic path)."""
    value = _copy_value
    return "".join("\t".join([value(v) for v in row]) + "\n" for row in rows)


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _copy_value(text) if _COPY_ESCAPE.search(text) else text


def _copy_converter(column: str) -> Any:
    """One user column's values in COPY's text format, by the model field's type."""
    kind = User._meta.get_field(column).get_internal_type()
    if kind == "JSONField":
        return lambda value: NULL if value is None else _json(value)
    if kind == "BooleanField":
        return lambda value: "t" if value else "f"
    if kind in ("DateTimeField", "DateField"):
        return lambda value: NULL if value is None else value.isoformat()
    if kind in ("IntegerField", "PositiveIntegerField"):
        return str
    return _copy_value  # text: NULL, or escaped where COPY needs it


def _copy_users(rows: list[tuple]) -> str:
    """The users table in COPY text format, each column converted by its known type."""
    converters = _USER_CONVERTERS
    return "".join(
        "\t".join([convert(value) for convert, value in zip(converters, row, strict=True)]) + "\n"
        for row in rows
    )


def _copy_versions(rows: list[tuple]) -> str:
    return "".join(
        f"{user_id}\t{version}\t{created_at.isoformat()}\t{_json(changes)}\t{chain_hash}\n"
        for user_id, version, created_at, changes, chain_hash in rows
    )


def _copy_status_changes(rows: list[tuple]) -> str:
    return "".join(
        f"{user_id}\t{version}\t{from_status}\t{to_status}\t{changed_at.isoformat()}\t"
        f"{_copy_value(reason)}\t{reason_code or NULL}\t{'t' if off_flow else 'f'}\t{chain_hash}\n"
        for (
            user_id,
            version,
            from_status,
            to_status,
            changed_at,
            reason,
            reason_code,
            off_flow,
            chain_hash,
        ) in rows
    )


def _copy_grants(rows: list[tuple]) -> str:
    return "".join(
        f"{user_id}\t{flag}\t{granted_at.isoformat()}\n" for user_id, flag, granted_at in rows
    )


def _count_moves(batch: Batch) -> None:
    """Add the batch's status rows to the dashboard's summary (`users.services.move_stats`),
    as the services do for each move (the seed's rows have no author)."""
    move_stats.add_moves(
        move_stats.moves_of_history(
            (user_id, from_status, to_status, at, None, reason_code)
            for user_id, _version, from_status, to_status, at, _reason, reason_code, *_rest in (
                batch.status_changes
            )
        )
    )


NULL = "\\N"
_USER_CONVERTERS = tuple(_copy_converter(column) for column in USER_COLUMNS)


class Command(BaseCommand):
    help = (
        "Load N realistic users (default 1,000,000) with their versions, status history and "
        "feature-flag grants: COPY on PostgreSQL, bulk_create elsewhere."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=1_000_000, help="users to add")
        parser.add_argument("--batch", type=int, default=50_000, help="users per transaction")
        parser.add_argument("--seed", type=int, default=42, help="random seed")
        parser.add_argument(
            "--until",
            type=dt.date.fromisoformat,
            default=None,
            help="creation dates end at this day (YYYY-MM-DD, default today); history spans "
            f"the {YEARS_OF_HISTORY} years before it",
        )
        parser.add_argument(
            "--keep-indexes",
            action="store_true",
            help="PostgreSQL: do not drop and rebuild the secondary indexes around the load",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count, batch_size = options["count"], options["batch"]
        if count < 1:
            raise CommandError("--count must be at least 1.")
        if batch_size < 1:
            raise CommandError("--batch must be at least 1.")
        day = options["until"] or dt.datetime.now(UTC).date()
        until = dt.datetime.combine(day, dt.time(), tzinfo=UTC)

        existing = User.objects.count()
        taken = {"email": set(), "phone": set(), "external_id": set()}
        if existing:
            # A top-up must not collide with what is there; the sets are only this big once.
            for email, phone, external_id in User.objects.values_list(
                "email", "phone", "external_id"
            ).iterator(chunk_size=20_000):
                if email:
                    taken["email"].add(email.lower())
                if phone:
                    taken["phone"].add(phone)
                if external_id:
                    taken["external_id"].add(external_id)
            for values in taken.values():
                values.add("")  # keeps the sets non-empty, so new values are remembered too
        generator = UserGenerator(
            count=count, seed=options["seed"], until=until, start_index=existing, taken=taken
        )
        self.stdout.write(
            f"Seeding {count:,} users on {connection.vendor} (batches of {batch_size:,}, "
            f"seed {options['seed']}, {existing:,} users already there)."
        )
        started = time.monotonic()
        if connection.vendor == "postgresql":
            rows = self._load_postgresql(generator, batch_size, count, options["keep_indexes"])
        else:
            rows = self._load_orm(generator, batch_size, count)
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Done: {count:,} users, {rows:,} rows in {elapsed:,.1f} s "
                f"({count / elapsed:,.0f} users/s, {rows / elapsed:,.0f} rows/s)."
            )
        )

    def _progress(self, done: int, total: int, rows: int, started: float, phase: str = "") -> None:
        elapsed = max(time.monotonic() - started, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if rate else 0
        self.stdout.write(
            f"  {done:>10,}/{total:,} users  {rows:>11,} rows  {rate:>8,.0f} users/s  "
            f"{rows / elapsed:>9,.0f} rows/s  ETA {eta:>5.0f} s{phase}"
        )
        self.stdout.flush()

    # PostgreSQL: COPY, one transaction per batch.
    def _load_postgresql(
        self, generator: UserGenerator, batch_size: int, count: int, keep_indexes: bool
    ) -> int:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")  # the seed can always be rerun
            cursor.execute("SET maintenance_work_mem = '256MB'")
        dropped: list[tuple[str, str]] = []
        if not keep_indexes and count >= DROP_INDEXES_FROM:
            dropped = self._drop_secondary_indexes()
        rows = 0
        started = time.monotonic()
        done = 0
        try:
            for batch in generator.batches(batch_size):
                with transaction.atomic(), connection.cursor() as cursor:
                    raw = cursor.cursor  # psycopg's own cursor, for copy()
                    for table, columns, data, formatter in (
                        ("users_user", USER_COLUMNS, batch.users, _copy_users),
                        ("users_userversion", VERSION_COLUMNS, batch.versions, _copy_versions),
                        (
                            "users_statuschange",
                            STATUS_COLUMNS,
                            batch.status_changes,
                            _copy_status_changes,
                        ),
                        ("users_featureflaggrant", GRANT_COLUMNS, batch.grants, _copy_grants),
                    ):
                        if not data:
                            continue
                        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                            for start in range(0, len(data), 5_000):
                                copy.write(formatter(data[start : start + 5_000]))
                    # The dashboard's summary, in the same transaction as the history rows.
                    _count_moves(batch)
                done += len(batch.users)
                rows += batch.row_count
                self._progress(done, count, rows, started)
        finally:
            if dropped:
                self._rebuild_indexes(dropped)
        with connection.cursor() as cursor:
            # VACUUM sets the visibility map (index-only scans) but reads whole tables: worth it
            # after a big load only. It cannot run inside a transaction (a test's) anyway.
            if connection.in_atomic_block or count < DROP_INDEXES_FROM:
                for table in SEEDED_TABLES:
                    cursor.execute(f"ANALYZE {table}")
            else:
                self.stdout.write("  vacuum analyse (visibility map for index-only scans)")
                for table in SEEDED_TABLES:
                    cursor.execute(f"VACUUM (ANALYZE) {table}")
        return rows

    def _drop_secondary_indexes(self) -> list[tuple[str, str]]:
        """Drop the indexes no constraint needs; they are rebuilt at once after the load."""
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
                FROM pg_index i
                JOIN pg_class t ON t.oid = i.indrelid
                WHERE t.relname = ANY(%s)
                  AND NOT i.indisprimary AND NOT i.indisunique
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
                ORDER BY 1
                """,
                [list(SEEDED_TABLES)],
            )
            indexes = cursor.fetchall()
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {name}")
        self.stdout.write(f"  dropped {len(indexes)} secondary indexes for the load")
        return indexes

    def _rebuild_indexes(self, indexes: list[tuple[str, str]]) -> None:
        started = time.monotonic()
        with connection.cursor() as cursor:
            for _name, definition in indexes:
                cursor.execute(definition)
        self.stdout.write(
            f"  rebuilt {len(indexes)} secondary indexes in {time.monotonic() - started:,.1f} s"
        )

    # Other databases: the same rows through the ORM.
    def _load_orm(self, generator: UserGenerator, batch_size: int, count: int) -> int:
        rows = 0
        done = 0
        started = time.monotonic()
        for batch in generator.batches(batch_size):
            with transaction.atomic():
                User.objects.bulk_create(
                    [User(**dict(zip(USER_COLUMNS, row, strict=True))) for row in batch.users]
                )
                UserVersion.objects.bulk_create(
                    [
                        UserVersion(**dict(zip(VERSION_COLUMNS, row, strict=True)))
                        for row in batch.versions
                    ],
                    batch_size=5_000,
                )
                StatusChange.objects.bulk_create(
                    [
                        StatusChange(**dict(zip(STATUS_COLUMNS, row, strict=True)))
                        for row in batch.status_changes
                    ],
                    batch_size=5_000,
                )
                FeatureFlagGrant.objects.bulk_create(
                    [
                        FeatureFlagGrant(**dict(zip(GRANT_COLUMNS, row, strict=True)))
                        for row in batch.grants
                    ],
                    batch_size=5_000,
                )
                _count_moves(batch)
            done += len(batch.users)
            rows += batch.row_count
            self._progress(done, count, rows, started)
        return rows
