"""The user list's structured filters (the sidebar), shared by the list, the board and export.

Deleted users are hidden unless the `deleted` filter asks for them: the FilterSet is given a
queryset that includes them and narrows it itself, so no caller can forget.
"""

from __future__ import annotations

import django_filters
import pycountry
from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet, TextField
from django.db.models.functions import Cast

from users.models import (
    AccessEvent,
    FeatureFlag,
    FeatureFlagGrant,
    SecurityEvent,
    Status,
    User,
    is_user_id,
)
from users.rendering import FastSelect
from users.selectors.reason_codes import reason_code_labels

DELETED_CHOICES = (("include", "Include deleted"), ("only", "Only deleted"))
# The assignee filter's words (issue 14.1); any other value is a user id.
ASSIGNEE_ME = "me"
ASSIGNEE_NONE = "none"


class AssigneeField(forms.CharField):
    """`me`, `none` or a user id: a value that is none of them is refused, never queried."""

    def clean(self, value):
        value = super().clean(value)
        if value in ("", ASSIGNEE_ME, ASSIGNEE_NONE) or is_user_id(value):
            return value
        raise forms.ValidationError(
            "Assignee is “me”, “none” or a user id.", code="invalid_assignee"
        )


class AssigneeFilter(django_filters.CharFilter):
    field_class = AssigneeField


def country_choices() -> list[tuple[str, str]]:
    return sorted(
        ((country.alpha_2, country.name) for country in pycountry.countries),
        key=lambda choice: choice[1],
    )


def reason_code_choices() -> list[tuple[str, str]]:
    """Every reason code, retired ones too: users may still be in a status moved into with one."""
    return [(code, f"{label} ({code})") for code, label in reason_code_labels().items()]


class UserFilter(django_filters.FilterSet):
    # distinct=False: status is a column of the row, it cannot duplicate it. django-filter's
    # default SELECT DISTINCT over every column turned the top-50 index scan into a sort of
    # all the matches (and the count into a DISTINCT over them).
    status = django_filters.MultipleChoiceFilter(
        choices=Status.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Status",
        distinct=False,
    )
    flag = django_filters.MultipleChoiceFilter(
        choices=FeatureFlag.choices,
        widget=forms.CheckboxSelectMultiple,
        method="filter_flags",
        label="Has feature flags",
    )
    language = django_filters.CharFilter(method="filter_language", label="Language")
    residency_country = django_filters.ChoiceFilter(
        choices=country_choices,
        empty_label="Any country",
        label="Residency country",
        widget=FastSelect,
    )
    # The code of the move into the user's current status (denormalised on the row).
    status_reason_code = django_filters.ChoiceFilter(
        choices=reason_code_choices,
        empty_label="Any reason code",
        label="Reason code",
    )
    created = django_filters.DateFromToRangeFilter(
        field_name="creation_datetime",
        label="Created",
        widget=django_filters.widgets.DateRangeWidget(attrs={"type": "date"}),
    )
    deleted = django_filters.ChoiceFilter(
        choices=DELETED_CHOICES,
        empty_label="Hide deleted",
        method="filter_deleted",
        label="Deleted users",
    )
    assignee = AssigneeFilter(method="filter_assignee", label="Assignee", max_length=27)

    class Meta:
        model = User
        fields: list[str] = []

    # Who "me" is: set by the list state from the request (None: "me" finds nobody).
    actor: User | None = None

    def filter_assignee(self, qs: QuerySet[User], name: str, value: str) -> QuerySet[User]:
        """Assigned to the person looking (`me`), to nobody (`none`) or to one user (an id)."""
        if value == ASSIGNEE_ME:
            return qs.filter(assignee=self.actor) if self.actor is not None else qs.none()
        if value == ASSIGNEE_NONE:
            return qs.filter(assignee__isnull=True)
        return qs.filter(assignee_id=value)

    def filter_flags(self, qs: QuerySet[User], name: str, value: list[str]) -> QuerySet[User]:
        """Users holding every chosen flag (EXISTS per flag: no join fan-out, no DISTINCT)."""
        for flag in value:
            qs = qs.filter(Exists(FeatureFlagGrant.objects.filter(user=OuterRef("pk"), flag=flag)))
        return qs

    def filter_language(self, qs: QuerySet[User], name: str, value: str) -> QuerySet[User]:
        """`nl` finds nl and nl-BE; `nl-BE` finds only nl-BE."""
        tag = value.strip()
        if not tag:
            return qs
        return qs.filter(Q(language__iexact=tag) | Q(language__istartswith=f"{tag}-"))

    def filter_deleted(self, qs: QuerySet[User], name: str, value: str) -> QuerySet[User]:
        # "include" needs nothing: filter_queryset only hides deleted users when this is empty.
        return qs.filter(deleted=True) if value == "only" else qs

    # Set by the list when an advanced query itself says what it wants of `deleted`.
    deleted_from_query = False

    def filter_queryset(self, queryset: QuerySet[User]) -> QuerySet[User]:
        if not self.form.cleaned_data.get("deleted") and not self.deleted_from_query:
            queryset = queryset.filter(deleted=False)
        return super().filter_queryset(queryset)

    @property
    def active_count(self) -> int:
        """How many filters are set, for the "Filters (2)" label and the clear link."""
        if not self.is_bound or not self.form.is_valid():
            return 0
        return sum(1 for value in self.form.cleaned_data.values() if value)


class _IPAddressFilter(django_filters.CharFilter):
    # An address that is none is refused with the form's message, never sent to the database.
    field_class = forms.GenericIPAddressField


def _log_dates() -> django_filters.DateFromToRangeFilter:
    """A log's day range (both logs' pages and CSVs)."""
    return django_filters.DateFromToRangeFilter(
        field_name="at",
        label="Date",
        widget=django_filters.widgets.DateRangeWidget(attrs={"type": "date"}),
    )


class SecurityEventFilter(django_filters.FilterSet):
    """The security log page's filters (and its CSV's): kind, person, address, dates."""

    kind = django_filters.ChoiceFilter(
        choices=SecurityEvent.Kind.choices, empty_label="Any kind", label="Kind"
    )
    person = django_filters.CharFilter(
        method="filter_person", label="Person (email contains)", max_length=254
    )
    address = _IPAddressFilter(field_name="ip_address", label="IP address")
    at = _log_dates()

    class Meta:
        model = SecurityEvent
        fields: list[str] = []

    def filter_person(
        self, qs: QuerySet[SecurityEvent], name: str, value: str
    ) -> QuerySet[SecurityEvent]:
        """Who did it, whom it concerns, or the address typed at a failed sign-in."""
        term = value.strip()
        if not term:
            return qs
        return qs.filter(
            Q(actor__email__icontains=term)
            | Q(subject__email__icontains=term)
            | Q(username__icontains=term)
        )


class AccessEventFilter(django_filters.FilterSet):
    """The access log page's filters (and its CSV's): kind, who looked, whose record, dates."""

    kind = django_filters.ChoiceFilter(
        choices=AccessEvent.Kind.choices, empty_label="Any kind", label="Kind"
    )
    person = django_filters.CharFilter(
        method="filter_person", label="By (email contains)", max_length=254
    )
    subject = django_filters.CharFilter(
        method="filter_subject", label="Whose record (user id or email)", max_length=254
    )
    at = _log_dates()

    class Meta:
        model = AccessEvent
        fields: list[str] = []

    def filter_person(
        self, qs: QuerySet[AccessEvent], name: str, value: str
    ) -> QuerySet[AccessEvent]:
        term = value.strip()
        return qs.filter(actor__email__icontains=term) if term else qs

    def filter_subject(
        self, qs: QuerySet[AccessEvent], name: str, value: str
    ) -> QuerySet[AccessEvent]:
        """A user id: that user's record, also among the ids an API page returned; otherwise
        part of the email of the one record opened."""
        term = value.strip()
        if not term:
            return qs
        if is_user_id(term):
            # As text: JSON containment is PostgreSQL's only; an id has no quote to escape.
            ids = Cast("subject_ids", TextField())
            return qs.alias(ids_text=ids).filter(
                Q(subject_id=term) | Q(ids_text__contains=f'"{term}"')
            )
        return qs.filter(subject__email__icontains=term)
