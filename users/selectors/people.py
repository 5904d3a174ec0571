"""People named beside a row: who wrote a version, moved a status, took a case, read a record.

A row's people are read with it (`select_related`), but only the columns their name needs: a
whole `User` is fifty columns, three JSON documents among them, for each of them on every row
of the detail's history, and building those instances cost more than the queries.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db.models import Model, QuerySet

from users.models import Role
from users.selectors.compiled import CompiledQuery

# What naming a person needs (`User.display_name_of`).
NAME_FIELDS = ("id", "first_name", "last_name", "email", "external_id")
# A row's assignee named through the row (issue 14.1): the lookups of their name columns.
ASSIGNEE_NAME_COLUMNS = tuple(f"assignee__{name}" for name in NAME_FIELDS if name != "id")


def with_people[M: Model](rows: QuerySet[M], *relations: str) -> QuerySet[M]:
    """`rows` with each person of `relations` (foreign keys to `User`) joined in, reading every
    column of the rows themselves and only the name columns of those people."""
    own = [field.name for field in rows.model._meta.concrete_fields]
    named: list[Any] = [f"{relation}__{name}" for relation in relations for name in NAME_FIELDS]
    return rows.select_related(*relations).only(*own, *named)


_ROLE_NAMES = CompiledQuery(
    lambda user_id: Group.objects.filter(user=user_id, name__in=Role.values).values_list("name")
)


def role_names_of(user_id: str) -> set[str]:
    """The console roles `user_id` holds (what `User.role_names` reads), from SQL written once:
    the detail page shows them and its rules ask them."""
    return {name for (name,) in _ROLE_NAMES.rows(user_id)}
