"""The User record of the contract (`shared/spec/user-contract.md`): fields, choices, constraints.

No workflow lives here: every write goes through `users.services`, which keeps versions, history
and the write-once rules. The model only says what a valid row looks like, and the database
enforces as much of that as it can.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

import pgtrigger
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from ulid import ULID

USER_ID_LENGTH = 27
# "U" + a ULID. The pattern alone serves the URL converter; anchored, the check constraint.
USER_ID_PATTERN = "U[0-9A-HJKMNP-TV-Z]{26}"
USER_ID_REGEX = rf"^{USER_ID_PATTERN}$"
_user_id_re = re.compile(USER_ID_REGEX)


def is_user_id(text: str) -> bool:
    """Whether `text` is a user id as the contract writes them ("U" + a ULID)."""
    return _user_id_re.fullmatch(text) is not None


# --- text compared without accents or case (the search box's names) ---------------------------
# One SQL function, `users_fold(text)`, on both databases: on PostgreSQL an IMMUTABLE wrapper
# around the `unaccent` extension (migration 0007, with trigram indexes on it), on SQLite
# `fold` below, registered on each connection (`users.apps`). The letters NFKD does not
# decompose are mapped as PostgreSQL's unaccent dictionary maps them.
FOLD_FUNCTION = "users_fold"
_FOLD_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "SS",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "\u0131": "i",  # dotless i
        "þ": "th",
        "Þ": "TH",
        "ð": "d",
        "Ð": "D",
    }
)


def fold(text: str | None) -> str | None:
    """`text` without accents, in upper case: "Chloé" and "CHLOE" both give "CHLOE"."""
    if text is None:
        return None
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


# `users_chain_link(previous, text)`: SHA-256 of the previous row's hash and a row's canonical
# text (`users.chain.link_text`), for the access log's INSERT, which only learns the previous
# row in SQL: a PostgreSQL function (migration 0023), registered on SQLite (`users.apps`).
CHAIN_LINK_FUNCTION = "users_chain_link"


class Folded(models.Func):
    """`users_fold(expression)`: the expression's text without accents, in upper case."""

    function = FOLD_FUNCTION
    output_field = models.TextField()


PHONE_REGEX = r"^\+[1-9][0-9]{7,15}$"
COUNTRY_REGEX = r"^[A-Z]{2}$"


def new_user_id() -> str:
    """`U` + a ULID: sortable by creation time, unique without coordination."""
    return f"U{ULID()}"


class Status(models.TextChoices):
    WAITING_FOR_VERIFICATION = "WAITING_FOR_VERIFICATION", "Waiting for verification"
    WAITING_FOR_SIGNATURE = "WAITING_FOR_SIGNATURE", "Waiting for signature"
    VERIFICATION_FAILED = "VERIFICATION_FAILED", "Verification failed"
    ACTIVE = "ACTIVE", "Active"
    INACTIVE = "INACTIVE", "Inactive"


# The platform's onboarding diagram. Moves outside it are allowed but need a reason.
RECOMMENDED_MOVES: dict[str, tuple[str, ...]] = {
    Status.WAITING_FOR_VERIFICATION: (Status.WAITING_FOR_SIGNATURE, Status.VERIFICATION_FAILED),
    Status.VERIFICATION_FAILED: (Status.WAITING_FOR_SIGNATURE, Status.INACTIVE),
    Status.WAITING_FOR_SIGNATURE: (Status.ACTIVE,),
    Status.ACTIVE: (Status.INACTIVE,),
    Status.INACTIVE: (Status.ACTIVE,),
}
# Where the diagram starts: a new customer, or an existing customer of the bank.
INITIAL_STATUSES = (Status.WAITING_FOR_VERIFICATION, Status.WAITING_FOR_SIGNATURE)


# Moves into these statuses say why with a reason code (issue 14.3), as off-flow moves do.
REASON_CODE_STATUSES = (Status.VERIFICATION_FAILED, Status.INACTIVE)
# The code whose move must also say why in words.
OTHER_REASON_CODE = "OTHER"
REASON_CODE_REGEX = r"^[A-Z][A-Z0-9_]{1,31}$"


def is_recommended_move(from_status: str | None, to_status: str) -> bool:
    """Whether `from_status` -> `to_status` is on the onboarding diagram; every other move is
    off-flow. `from_status` None is the start (a creation), whose moves are the initial
    statuses. A "move" to the same status is none: never recommended."""
    if from_status is None:
        return to_status in INITIAL_STATUSES
    return to_status in RECOMMENDED_MOVES.get(from_status, ())


def needs_reason_code(from_status: str | None, to_status: str) -> bool:
    """Whether a move (from None: a creation) must carry a reason code: into
    VERIFICATION_FAILED or INACTIVE, or off the recommended flow."""
    return to_status in REASON_CODE_STATUSES or not is_recommended_move(from_status, to_status)


class FeatureFlag(models.TextChoices):
    CONSOLE = "CONSOLE", "Console"
    ROBO_ADVISOR = "ROBO_ADVISOR", "Robo Advisor"
    SELF_INVESTOR = "SELF_INVESTOR", "Self Investor"
    STORYTELLER = "STORYTELLER", "StoryTeller"


class BankAccountNumberType(models.TextChoices):
    IBAN = "IBAN", "IBAN"
    ABA = "ABA", "ABA"


class BankIdType(models.TextChoices):
    BIC = "BIC", "BIC"
    ABA = "ABA", "ABA routing number"


class EmploymentStatus(models.TextChoices):
    FULL_TIME = "FULL_TIME", "Full-time"
    PART_TIME = "PART_TIME", "Part-time"
    SELF_EMPLOYED = "SELF_EMPLOYED", "Self-employed"
    UNEMPLOYED = "UNEMPLOYED", "Unemployed"
    RETIRED = "RETIRED", "Retired"
    STUDENT = "STUDENT", "Student"
    HOMEMAKER = "HOMEMAKER", "Homemaker"


# Those who earn from work say in which industry (seed 002's employmentInfo rule).
EMPLOYED_STATUSES = (
    EmploymentStatus.FULL_TIME,
    EmploymentStatus.PART_TIME,
    EmploymentStatus.SELF_EMPLOYED,
)


class IncomeRange(models.TextChoices):
    """Yearly gross income, in euros."""

    UNDER_25K = "UNDER_25K", "Under 25,000"
    FROM_25K = "25K_50K", "25,000 to 50,000"
    FROM_50K = "50K_100K", "50,000 to 100,000"
    FROM_100K = "100K_250K", "100,000 to 250,000"
    FROM_250K = "250K_500K", "250,000 to 500,000"
    OVER_500K = "OVER_500K", "Over 500,000"


class SourceOfWealth(models.TextChoices):
    SALARY = "SALARY", "Salary"
    BUSINESS = "BUSINESS", "Business income"
    INVESTMENTS = "INVESTMENTS", "Investments"
    SAVINGS = "SAVINGS", "Savings"
    PENSION = "PENSION", "Pension"
    INHERITANCE = "INHERITANCE", "Inheritance"
    PROPERTY = "PROPERTY", "Sale of property"
    GIFT = "GIFT", "Gift"
    OTHER = "OTHER", "Other"


class Industry(models.TextChoices):
    AGRICULTURE = "AGRICULTURE", "Agriculture"
    CONSTRUCTION = "CONSTRUCTION", "Construction"
    EDUCATION = "EDUCATION", "Education"
    FINANCE = "FINANCE", "Finance and insurance"
    HEALTHCARE = "HEALTHCARE", "Healthcare"
    HOSPITALITY = "HOSPITALITY", "Hospitality"
    IT = "IT", "Information technology"
    LEGAL = "LEGAL", "Legal"
    MANUFACTURING = "MANUFACTURING", "Manufacturing"
    PUBLIC_SECTOR = "PUBLIC_SECTOR", "Public sector"
    REAL_ESTATE = "REAL_ESTATE", "Real estate"
    RETAIL = "RETAIL", "Retail"
    TRANSPORT = "TRANSPORT", "Transport"
    OTHER = "OTHER", "Other"


class Role(models.TextChoices):
    """Console roles; each is a `Group` of the same name, created by a data migration.

    The table of role -> permissions is in `users/migrations/0002_roles.py` (a migration keeps
    its own frozen copy; `0010` lets back office read the history). Only `users/policy.py` asks
    `user.has_perm("users.<codename>")`, never a role name, so the migrations are the one place
    to change what a role may do.
    """

    BACK_OFFICE = "back_office", "Back office"
    COMPLIANCE = "compliance", "Compliance"
    ADMIN = "admin", "Admin"


class UserManager(BaseUserManager["User"]):
    """`create_user` and `create_superuser` (what `manage.py createsuperuser` calls) write
    through the services, so those users get version 1, their roles and flags like any other.

    Models never import the services: `UsersConfig.ready()` hands the manager the service that
    creates users (`create_service`).
    """

    use_in_migrations = True
    create_service: Callable[..., User] | None = None

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username)

    def _create(self, **kwargs: Any) -> User:
        if self.create_service is None:
            raise RuntimeError("The users app is not ready: no service to create users with.")
        return self.create_service(**kwargs)

    def create_user(self, email: str | None = None, password: str | None = None, **data) -> User:
        return self._create(data={"email": email, **data}, actor=None, password=password)

    def create_superuser(self, email: str | None = None, password: str | None = None, **data):
        """An admin who can sign in at once: CONSOLE flag and the admin role included."""
        data.pop("is_superuser", None)
        data.pop("is_staff", None)
        flags = set(data.pop("feature_flags", ())) | {FeatureFlag.CONSOLE}
        return self._create(
            data={"email": email, "feature_flags": sorted(flags), **data},
            actor=None,
            password=password,
            roles=[Role.ADMIN],
            is_superuser=True,
        )


# --- What the database itself refuses (PostgreSQL; django-pgtrigger, no-ops on SQLite) -------
# The services keep these rules on every database; the triggers keep them against anything else
# that writes (a shell's `.update()`, a plain `save()`, a script with the ORM or SQL). Each
# refusal raises an SQLSTATE of class 23, which Django raises as `IntegrityError`.

# The columns of the registry's tracked fields (`contract.TRACKED_FIELDS`, each `Field.columns`):
# a change to any of them is a new version. The registry sits above the models, so the list is
# written out here and `tests/test_audit_triggers.py` holds it equal to the registry.
VERSIONED_COLUMNS = (
    "external_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "brokerage_user_id",
    "idp_user_id",
    "language",
    "status",
    "date_of_birth",
    "residency_country",
    "nationalities",
    "bank_account_number",
    "bank_account_number_type",
    "bank_id",
    "bank_id_type",
    "address",
    "tax_residency",
    "identity",
    "metadata",
    "employment_status",
    "income_range",
    "sources_of_wealth",
    "industry",
    "deleted",
)


def refuse(
    *,
    name: str,
    operation: pgtrigger.Operation,
    message: str,
    errcode: str,
    condition: pgtrigger.Condition | None = None,
) -> pgtrigger.Trigger:
    """A row trigger that refuses `operation` (when `condition` holds) with `message`."""
    escaped = message.replace("'", "''")
    return pgtrigger.Trigger(
        name=name,
        when=pgtrigger.Before,
        operation=operation,
        condition=condition,
        func=f"RAISE EXCEPTION USING ERRCODE = '{errcode}', MESSAGE = '{escaped}';",
    )


def append_only(table: str) -> list[pgtrigger.Trigger]:
    """History rows are written once: UPDATE and DELETE are refused."""
    return [
        refuse(
            name="append_only",
            operation=pgtrigger.Update | pgtrigger.Delete,
            message=f"{table} is append-only: its rows are never changed or removed.",
            errcode="restrict_violation",
        )
    ]


def _write_once(column: str) -> str:
    return f'(OLD."{column}" IS NOT NULL AND NEW."{column}" IS DISTINCT FROM OLD."{column}")'


# The chain's head moves with each version too, so a stale copy of the row cannot put it back.
_ANY_VERSIONED_CHANGE = " OR ".join(
    f'OLD."{column}" IS DISTINCT FROM NEW."{column}"'
    for column in (*VERSIONED_COLUMNS, "history_hash")
)
USER_TRIGGERS = [
    refuse(
        name="email_phone_write_once",
        operation=pgtrigger.Update,
        condition=pgtrigger.Condition(f"({_write_once('email')} OR {_write_once('phone')})"),
        message="email and phone are write-once: a set value is never changed.",
        errcode="check_violation",
    ),
    refuse(
        name="version_per_change",
        operation=pgtrigger.Update,
        condition=pgtrigger.Condition(
            "((NEW.version IS DISTINCT FROM OLD.version AND NEW.version <> OLD.version + 1)"
            f" OR (NEW.version = OLD.version AND ({_ANY_VERSIONED_CHANGE})))"
        ),
        message="A change to a user's fields raises its version by exactly one.",
        errcode="check_violation",
    ),
]


class User(AbstractBaseUser, PermissionsMixin):
    id = models.CharField(
        primary_key=True, max_length=USER_ID_LENGTH, default=new_user_id, editable=False
    )
    external_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    first_name = models.CharField(max_length=128, blank=True, default="")
    last_name = models.CharField(max_length=128, blank=True, default="")
    # NULL, not "", means "not set" for the unique fields so that many users may lack one.
    email = models.EmailField(max_length=254, null=True, blank=True, unique=True)
    phone = models.CharField(max_length=16, null=True, blank=True, unique=True)
    brokerage_user_id = models.CharField(max_length=64, blank=True, default="")
    idp_user_id = models.CharField(max_length=64, blank=True, default="")
    language = models.CharField(max_length=35, blank=True, default="")

    # counter_account is one object in the contract; its parts are columns so that an IBAN is
    # searchable by index. It is always replaced whole by the services.
    bank_account_number = models.CharField(max_length=34, blank=True, default="")
    bank_account_number_type = models.CharField(
        max_length=4, choices=BankAccountNumberType.choices, blank=True, default=""
    )
    bank_id = models.CharField(max_length=11, blank=True, default="")
    bank_id_type = models.CharField(
        max_length=3, choices=BankIdType.choices, blank=True, default=""
    )

    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.WAITING_FOR_VERIFICATION
    )
    # Denormalised from the status history so that "time in status" needs no join.
    status_changed_at = models.DateTimeField()
    # The reason code of the move into the current status ("" when it had none), denormalised
    # from the status history for the list's filter; written with each move, not versioned.
    status_reason_code = models.CharField(max_length=32, blank=True, default="")

    date_of_birth = models.DateField(null=True, blank=True)
    residency_country = models.CharField(max_length=2, blank=True, default="")
    nationalities = models.JSONField(default=list, blank=True)
    address = models.JSONField(null=True, blank=True)
    tax_residency = models.JSONField(null=True, blank=True)
    identity = models.CharField(max_length=64, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)

    # Employment and source of wealth (seed 002's employmentInfo), checked together by
    # `validators.employment`.
    employment_status = models.CharField(
        max_length=16, choices=EmploymentStatus.choices, blank=True, default=""
    )
    income_range = models.CharField(
        max_length=16, choices=IncomeRange.choices, blank=True, default=""
    )
    sources_of_wealth = models.JSONField(default=list, blank=True)
    industry = models.CharField(max_length=16, choices=Industry.choices, blank=True, default="")

    readable_by = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="readable_records"
    )
    modifiable_by = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="modifiable_records"
    )

    creation_datetime = models.DateTimeField(editable=False)
    version = models.PositiveIntegerField(default=1)
    version_datetime = models.DateTimeField()
    version_authored_by_user = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deleted = models.BooleanField(default=False)
    # The head of the user's history chain (`users/chain.py`): the hash of the last history row.
    history_hash = models.CharField(max_length=64, blank=True, default="", editable=False)

    # Who works the onboarding case (issue 14.1): the reviewer's workload, not a field of the
    # record, so no version (not in VERSIONED_COLUMNS); each change is a CaseAssignment row.
    # Written by `users.services.assignment` only.
    assignee = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_cases",
        editable=False,
    )
    assigned_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        triggers = USER_TRIGGERS
        ordering = ["-creation_datetime", "-id"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(id__regex=USER_ID_REGEX),
                name="user_id_format",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=Status.values), name="user_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(phone__isnull=True) | models.Q(phone__regex=PHONE_REGEX),
                name="user_phone_e164",
            ),
            models.CheckConstraint(
                condition=models.Q(residency_country="")
                | models.Q(residency_country__regex=COUNTRY_REGEX),
                name="user_residency_country_iso",
            ),
            models.CheckConstraint(
                condition=models.Q(bank_account_number="", bank_account_number_type="")
                | (
                    ~models.Q(bank_account_number="")
                    & models.Q(bank_account_number_type__in=BankAccountNumberType.values)
                ),
                name="user_counter_account_typed",
            ),
            models.CheckConstraint(
                condition=models.Q(bank_id="", bank_id_type="")
                | (~models.Q(bank_id="") & models.Q(bank_id_type__in=BankIdType.values)),
                name="user_bank_id_typed",
            ),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="user_version_gte_1"),
        ]
        indexes = [
            models.Index(fields=["status", "-status_changed_at"], name="user_status_idx"),
            models.Index(fields=["last_name", "first_name"], name="user_name_idx"),
            models.Index(fields=["bank_account_number"], name="user_iban_idx"),
            models.Index(fields=["-creation_datetime", "-id"], name="user_created_idx"),
            # A reviewer's cases ("Mine", a name on the board's workload strip): the board's
            # columns in their order, and the workload's counts, from the index alone.
            models.Index(
                fields=["assignee", "status", "status_changed_at"],
                condition=models.Q(assignee__isnull=False, deleted=False),
                name="user_assignee_idx",
            ),
            models.Index(
                fields=["status_reason_code"],
                condition=~models.Q(status_reason_code=""),
                name="user_status_reason_code_idx",
            ),
        ]
        permissions = [
            ("change_status", "Can move a user to another status"),
            ("change_status_off_flow", "Can move a user off the recommended flow"),
            ("view_history", "Can read status and version history"),
            ("manage_feature_flags", "Can grant and revoke feature flags"),
            ("restore_user", "Can restore a deleted user"),
            ("manage_roles", "Can grant and revoke console roles"),
            ("export_users", "Can export users as CSV"),
            ("manage_api_tokens", "Can issue and revoke API tokens"),
            ("export_client_file", "Can download a user's file as of a date"),
            ("approve_change", "Can approve or reject another person's guarded change"),
            ("view_access_log", "Can read who viewed, exported and read users"),
            ("reveal_personal_data", "Can reveal masked personal data, with a purpose"),
            ("view_dashboard", "Can read the onboarding dashboard"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return User.display_name_of(self)

    @staticmethod
    def display_name_of(user: Any) -> str:
        """The name shown for `user`: anything with first_name, last_name, email, external_id
        and id (a User, or the plain rows the board reads instead of model instances)."""
        name = f"{user.first_name} {user.last_name}".strip()
        return name or user.email or user.external_id or user.id

    @property
    def counter_account(self) -> dict[str, str] | None:
        if not self.bank_account_number:
            return None
        return {
            "bank_account_number": self.bank_account_number,
            "bank_account_number_type": self.bank_account_number_type,
            "bank_id": self.bank_id or None,
            "bank_id_type": self.bank_id_type or None,
        }

    def get_sources_of_wealth_display(self) -> list[str]:
        """The labels of the sources of wealth, as `get_<field>_display` gives one choice's."""
        return [SourceOfWealth(value).label for value in self.sources_of_wealth or []]

    # Django admin and auth ask for these; they derive from the roles, never stored twice.
    @property
    def is_staff(self) -> bool:
        return self.is_superuser or self.has_role(Role.ADMIN)

    def role_names(self) -> set[str]:
        cache = getattr(self, "_role_names", None)
        if cache is None:
            cache = set(self.groups.filter(name__in=Role.values).values_list("name", flat=True))
            self._role_names = cache
        return cache

    def has_role(self, *roles: str) -> bool:
        return bool(self.role_names() & set(roles))

    def flag_names(self) -> set[str]:
        cache = getattr(self, "_flag_names", None)
        if cache is None:
            cache = {grant.flag for grant in self.flag_grants.all()}
            self._flag_names = cache
        return cache


class FeatureFlagGrant(models.Model):
    """A flag the user holds now, with who granted it and when.

    Grants and revokes are also versions of the user (field `feature_flags`), so the full
    audit trail with authors lives in `UserVersion`.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="flag_grants")
    flag = models.CharField(max_length=16, choices=FeatureFlag.choices)
    granted_at = models.DateTimeField()
    granted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "flag"], name="flag_grant_unique"),
            models.CheckConstraint(
                condition=models.Q(flag__in=FeatureFlag.values), name="flag_grant_valid"
            ),
        ]
        indexes = [models.Index(fields=["flag", "user"], name="flag_grant_flag_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.flag}"


class UserVersion(models.Model):
    """One version of a user: who made it, when, and the field-level diff from the one before.

    `changes` maps a contract field name to `[old, new]` (JSON values). Version 1 holds the
    creation, with `old` null for every field that was set.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    author = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changes = models.JSONField(default=dict)
    # A guarded change applied on approval (four-eyes): `author` proposed it (the maker), this
    # person approved it (the checker).
    approved_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # SHA-256 of the previous history row's hash and this row's content (`users/chain.py`).
    chain_hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        triggers = append_only("users_userversion")
        ordering = ["user", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["user", "version"], name="user_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} v{self.version}"


class ReasonCode(models.Model):
    """Why a user was moved (issue 14.3): a code from the list admins maintain. A code in use
    is never deleted (PROTECT from the status history); it is deactivated instead, and moves
    then refuse it while the history keeps showing its label."""

    code = models.CharField(primary_key=True, max_length=32)
    label = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(code__regex=REASON_CODE_REGEX), name="reason_code_format"
            ),
        ]

    def __str__(self) -> str:
        return self.label


class StatusChange(models.Model):
    """A row of the status history: from, to, who, when, why, and whether it left the flow."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="status_changes")
    version = models.PositiveIntegerField()
    from_status = models.CharField(max_length=32, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=32, choices=Status.choices)
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True, default="")
    # Required into VERIFICATION_FAILED / INACTIVE and off the flow (`needs_reason_code`).
    reason_code = models.ForeignKey(
        ReasonCode,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="status_changes",
    )
    off_flow = models.BooleanField(default=False)
    # SHA-256 of the previous history row's hash and this row's content (`users/chain.py`).
    chain_hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        triggers = append_only("users_statuschange")
        ordering = ["user", "-changed_at", "-id"]
        indexes = [models.Index(fields=["user", "-changed_at"], name="status_change_user_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(off_flow=False)
                | ~models.Q(reason="")
                | models.Q(reason_code__isnull=False),
                name="status_change_off_flow_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.from_status or 'start'} -> {self.to_status}"


class CaseAssignment(models.Model):
    """A row of the assignment history (issue 14.1): the case of `user` given to `assignee`
    (None: unassigned), who had it before, by whom, when. Written by
    `users.services.assignment` with `User.assignee`; shown in the detail's timeline. Not part
    of the history chain (`users/chain.py`): the workload, not the record."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="assignments")
    assignee = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    previous_assignee = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField()

    class Meta:
        triggers = append_only("users_caseassignment")
        ordering = ["user", "-at", "-id"]
        indexes = [models.Index(fields=["user", "-at"], name="case_assignment_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.previous_assignee_id or '-'} -> {self.assignee_id or '-'}"


# How long one case note may be (a page of text).
CASE_NOTE_MAX_LENGTH = 5000


class CaseNote(models.Model):
    """A compliance officer's note on a user's case (issue 14.2): who, when, what. Notes are
    never changed nor removed (a PostgreSQL trigger refuses it): a correction is a new note.
    Written by `users.services.notes`, alone or with a status move."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="case_notes")
    author = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    text = models.TextField()

    class Meta:
        triggers = append_only("users_casenote")
        ordering = ["user", "-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="case_note_user_idx")]
        constraints = [
            models.CheckConstraint(condition=~models.Q(text=""), name="case_note_has_text"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.created_at:%Y-%m-%d %H:%M}: {self.text[:40]}"


class ChangeRequest(models.Model):
    """A guarded change waiting for a second person (four-eyes): what was proposed on which
    version, by whom, and how it was decided. The user's record is unchanged until approval.

    `changes` maps contract fields to `[old, new]` as versions do. At most one request per user
    and kind is pending; a newer proposal voids the older one. Written only by
    `users.services.change_requests`; which changes are guarded is `users.policy`'s question.
    """

    class Kind(models.TextChoices):
        COUNTER_ACCOUNT = "counter_account", "Counter account"
        ROLES = "roles", "Console roles"
        CONSOLE_FLAG = "console_flag", "Console access (CONSOLE flag)"

    class State(models.TextChoices):
        PENDING = "PENDING", "Pending"
        APPROVED = "APPROVED", "Approved"
        REJECTED = "REJECTED", "Rejected"
        WITHDRAWN = "WITHDRAWN", "Withdrawn"
        EXPIRED = "EXPIRED", "Expired"
        VOID = "VOID", "Void"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="change_requests")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    changes = models.JSONField(default=dict)
    base_version = models.PositiveIntegerField()
    reason = models.TextField(blank=True, default="")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    proposed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    proposed_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True, default="")
    applied_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["proposed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind"],
                condition=models.Q(state="PENDING"),
                name="change_request_one_pending",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["counter_account", "roles", "console_flag"]),
                name="change_request_kind_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "proposed_at"], name="change_request_state_idx"),
            models.Index(fields=["user", "-proposed_at"], name="change_request_user_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} of {self.user_id} ({self.state})"

    def is_open(self, now: Any) -> bool:
        """Pending and not past its expiry (an overdue one counts as expired before the
        sweep or the next decision writes it so)."""
        return self.state == self.State.PENDING and self.expires_at > now

    def state_at(self, now: Any) -> str:
        if self.state == self.State.PENDING and self.expires_at <= now:
            return self.State.EXPIRED
        return self.state


# --- JSON API (users/api.py) -------------------------------------------------------------------


class ApiToken(models.Model):
    """A bearer token for the JSON API, acting as `user` with that user's roles.

    The secret is shown once when issued; only its SHA-256 is stored (`users.tokens`). `prefix`
    is the start of the secret, enough to recognise a token in the console without revealing it.
    A token stops working when revoked, and whenever its user may no longer use the console.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyKey(models.Model):
    """The first response to a POST carrying an `Idempotency-Key`, replayed for 24 hours.

    The row is inserted before the work it guards, in the same transaction: a concurrent request
    with the same key waits on the unique constraint and then finds the stored response.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"


class SecurityEvent(models.Model):
    """One line of the security log: sign-ins and their failures, lockouts, factors, sessions,
    tokens and roles. Written by `users.services.security`, read by admins on the security log
    page; rows are never changed."""

    class Kind(models.TextChoices):
        SIGN_IN = "SIGN_IN", "Signed in"
        SIGN_IN_FAILED = "SIGN_IN_FAILED", "Sign-in failed"
        SECOND_FACTOR_FAILED = "SECOND_FACTOR_FAILED", "Second factor failed"
        LOCKED_OUT = "LOCKED_OUT", "Locked out"
        UNLOCKED = "UNLOCKED", "Unlocked"
        SIGN_OUT = "SIGN_OUT", "Signed out"
        SESSION_ENDED = "SESSION_ENDED", "Sessions ended"
        FACTOR_ENROLLED = "FACTOR_ENROLLED", "Factor enrolled"
        FACTOR_RESET = "FACTOR_RESET", "Factors reset"
        RECOVERY_CODE_USED = "RECOVERY_CODE_USED", "Recovery code used"
        STEP_UP = "STEP_UP", "Second factor re-checked"
        TOKEN_ISSUED = "TOKEN_ISSUED", "API token issued"
        TOKEN_REVOKED = "TOKEN_REVOKED", "API token revoked"
        ROLE_GRANTED = "ROLE_GRANTED", "Role granted"
        ROLE_REVOKED = "ROLE_REVOKED", "Role revoked"
        PASSWORD_CHANGED = "PASSWORD_CHANGED", "Password changed"
        CHANGE_APPROVED = "CHANGE_APPROVED", "Guarded change approved"
        CHANGE_REJECTED = "CHANGE_REJECTED", "Guarded change rejected"

    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # Who did it (None: the system, or someone not signed in) and whom it concerns.
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The address typed at a failed sign-in (the account may not exist).
    username = models.CharField(max_length=254, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        triggers = append_only("users_securityevent")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["-at", "-id"], name="security_event_at"),
            models.Index(fields=["kind", "-at"], name="security_event_kind"),
            models.Index(fields=["subject", "-at"], name="security_event_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind} {self.username or self.subject_id}"


class ConsoleSession(models.Model):
    """One signed-in session of the console, beside Django's session row of the same key: who,
    since when, last seen (touched at most once a minute), from where. Written by
    `users.services.sessions`; `end_sessions` deletes the Django row and sets `ended_at`, so
    a session that ended never comes back (a re-granted flag finds no session to revive)."""

    session_key = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="console_sessions")
    started = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen", "-id"]
        indexes = [
            models.Index(fields=["user", "ended_at"], name="console_session_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.session_key[:8]}… {'ended' if self.ended_at else 'active'}"


class RevealPurpose(models.TextChoices):
    """Why a masked value is revealed (issue 13.3): the reveal form's short list; `OTHER` needs
    the free text."""

    CLIENT_REQUEST = "CLIENT_REQUEST", "Client request (identity check)"
    KYC_REVIEW = "KYC_REVIEW", "KYC or onboarding review"
    PAYOUT_CHECK = "PAYOUT_CHECK", "Payout or counter account check"
    CORRECTION = "CORRECTION", "Correcting the record"
    INVESTIGATION = "INVESTIGATION", "Fraud or AML investigation"
    REGULATOR = "REGULATOR", "Regulator or auditor request"
    OTHER = "OTHER", "Other (say which)"


# How many user ids one access row names (an API page; its `row_count` says how many there were).
ACCESS_IDS_CAP = 100


class AccessEvent(models.Model):
    """One line of the access log (issue 13.4): who opened which user's detail or file, read
    users through the API, exported which filter, or revealed which field and why. Written by
    `users.services.access` (one INSERT per access), read by compliance and admins on the
    access log page and the detail's "Accessed by" panel; rows are never changed.

    Each row carries the hash of its content and of the previous row of the same actor
    (issue 13.2): one chain per person who looks, so that two people's accesses never wait on
    each other. The INSERT reads the previous hash itself; two of one person's accesses racing
    for the same previous row cannot both be written (`access_event_chain_once`), and the
    loser is written again after the winner. `AccessSeal` fixes the chains' heads."""

    class Kind(models.TextChoices):
        VIEWED_DETAIL = "VIEWED_DETAIL", "Opened the detail"
        VIEWED_FILE = "VIEWED_FILE", "Opened the file as of a date"
        EXPORTED = "EXPORTED", "Exported users (CSV)"
        API_READ = "API_READ", "Read a user (API)"
        API_LIST = "API_LIST", "Queried users (API)"
        # Point 13.3 (masking): `field` names what was shown, `purpose` why.
        REVEALED = "REVEALED", "Revealed a field"

    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # Who looked (None: the system, a command) and whose record (None: many, see subject_ids).
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    field = models.CharField(max_length=64, blank=True)
    purpose = models.TextField(blank=True)
    # The filter or query as sent (a query string), the export's columns, how many rows were
    # returned, and their ids (at most ACCESS_IDS_CAP).
    query = models.TextField(blank=True)
    columns = models.JSONField(default=list, blank=True)
    row_count = models.IntegerField(null=True, blank=True)
    subject_ids = models.JSONField(default=list, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    # The hash of the actor's previous row ("" for their first) and of this row over it
    # (`users.chain.access_row_content`).
    previous_hash = models.CharField(max_length=64, blank=True, default="")
    chain_hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        triggers = append_only("users_accessevent")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["-at", "-id"], name="access_event_at"),
            models.Index(fields=["kind", "-at"], name="access_event_kind"),
            models.Index(fields=["subject", "-at"], name="access_event_subject"),
            models.Index(fields=["actor", "-at"], name="access_event_actor"),
            # The head of an actor's chain: their row with the highest id.
            models.Index(fields=["actor", "-id"], name="access_event_actor_id"),
        ]
        constraints = [
            # One row after each: a second one of the same actor lost a race and is retried.
            models.UniqueConstraint(
                fields=["actor", "previous_hash"], name="access_event_chain_once"
            ),
            models.UniqueConstraint(
                fields=["previous_hash"],
                condition=models.Q(actor=None),
                name="access_event_system_chain_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind} {self.actor_id} {self.subject_id or ''}"


class AccessSeal(models.Model):
    """Tamper evidence for the access log: one row per sealed stretch of `AccessEvent` ids
    (`first_id`..`last_id`, every row between them), whose `chain_hash` links the previous
    seal's hash through each row's content in id order (`users/chain.py`).

    Each access row also carries its own hash in its actor's chain; a chain alone cannot tell
    that its newest rows were removed, a seal over them can. `manage.py seal_access_log`, run
    every minute, seals what was written since, and `manage.py verify_audit` recomputes every
    seal. Written by `users.services.access`.
    """

    sealed_at = models.DateTimeField(default=timezone.now)
    first_id = models.BigIntegerField(unique=True)
    last_id = models.BigIntegerField()
    row_count = models.PositiveIntegerField()
    previous_hash = models.CharField(max_length=64, blank=True)
    chain_hash = models.CharField(max_length=64)

    class Meta:
        triggers = append_only("users_accessseal")
        ordering = ["first_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(last_id__gte=models.F("first_id")), name="access_seal_range"
            ),
        ]

    def __str__(self) -> str:
        return f"access rows {self.first_id}..{self.last_id} ({self.row_count})"


# --- saved views (issue 14.7) ------------------------------------------------------------------


class SavedView(models.Model):
    """A named filter of the user list or the board: the screen's query string (filters,
    search, query mode, sort; never a page or a cursor), its owner's alone or shared with one
    of the owner's roles. Written only by `users.services.saved_views`; who may share with
    which role is `users.policy`'s question. A role (group) deleted makes its views private
    again (SET_NULL); a view shared with a role its owner no longer holds is not shown to that
    role (`users.selectors.saved_views`)."""

    class Screen(models.TextChoices):
        LIST = "list", "User list"
        BOARD = "board", "Status board"

    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=80)
    screen = models.CharField(max_length=8, choices=Screen.choices)
    query = models.TextField(blank=True, default="")
    shared_with_role = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "screen", "name"], name="saved_view_unique_name"
            ),
            models.CheckConstraint(
                condition=models.Q(screen__in=["list", "board"]), name="saved_view_screen_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["shared_with_role", "screen", "name"], name="saved_view_shared"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.screen}, {self.owner_id})"


# --- the onboarding dashboard's summary (issue 14.6) -------------------------------------------
# Upper edges, in hours, of the buckets a move's time in its status is counted in: roughly
# log-scale (each about 1.5-2x the last), in units a reviewer reads (hours, days, weeks). Bucket
# i holds durations in (EDGES[i-1], EDGES[i]]; the last bucket, past a year, has no upper edge.
MOVE_DURATION_EDGES_HOURS = (
    1, 2, 4, 8, 12, 24, 36, 48, 72, 96, 120, 168, 240, 336, 504, 720, 1440, 2160, 4320, 8760,
)  # fmt: skip
MOVE_BUCKETS = len(MOVE_DURATION_EDGES_HOURS) + 1


class StatusMoveDaily(models.Model):
    """The status moves of one day (console time zone), per move, person and reason code: how
    many, how many left an SLA-bound status at risk or past its target, and a histogram of
    the time spent in the status left (`h0` ... `h20`, buckets of MOVE_DURATION_EDGES_HOURS).

    Kept in the same transaction as each StatusChange by `users.services.move_stats` (and by the
    bulk seeder), so the dashboard reads a few hundred rows instead of the history. A creation
    is a move from "" (no duration). `changed_by` is the mover's user id ("" for none: imports,
    the seed), `reason_code` "" for none; plain text, not foreign keys, so that the key has no
    NULL (a unique key with NULLs is not unique on every database). Staff users' own moves are
    not counted: they are no onboarding cases.
    """

    day = models.DateField()
    from_status = models.CharField(max_length=32, blank=True)
    to_status = models.CharField(max_length=32)
    changed_by = models.CharField(max_length=USER_ID_LENGTH, blank=True, default="")
    reason_code = models.CharField(max_length=64, blank=True, default="")
    count = models.PositiveIntegerField(default=0)
    at_risk = models.PositiveIntegerField(default=0)
    breached = models.PositiveIntegerField(default=0)
    h0 = models.PositiveIntegerField(default=0)
    h1 = models.PositiveIntegerField(default=0)
    h2 = models.PositiveIntegerField(default=0)
    h3 = models.PositiveIntegerField(default=0)
    h4 = models.PositiveIntegerField(default=0)
    h5 = models.PositiveIntegerField(default=0)
    h6 = models.PositiveIntegerField(default=0)
    h7 = models.PositiveIntegerField(default=0)
    h8 = models.PositiveIntegerField(default=0)
    h9 = models.PositiveIntegerField(default=0)
    h10 = models.PositiveIntegerField(default=0)
    h11 = models.PositiveIntegerField(default=0)
    h12 = models.PositiveIntegerField(default=0)
    h13 = models.PositiveIntegerField(default=0)
    h14 = models.PositiveIntegerField(default=0)
    h15 = models.PositiveIntegerField(default=0)
    h16 = models.PositiveIntegerField(default=0)
    h17 = models.PositiveIntegerField(default=0)
    h18 = models.PositiveIntegerField(default=0)
    h19 = models.PositiveIntegerField(default=0)
    h20 = models.PositiveIntegerField(default=0)

    KEY = ("day", "from_status", "to_status", "changed_by", "reason_code")
    BUCKET_COLUMNS = tuple(f"h{i}" for i in range(MOVE_BUCKETS))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "from_status", "to_status", "changed_by", "reason_code"],
                name="status_move_daily_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.from_status or 'start'} -> {self.to_status}: {self.count}"
