"""Accent- and case-free name search, and case-free external ids, on PostgreSQL (issue point 7).

The search box compares `users_fold(name) LIKE '%' || users_fold('word') || '%'`:
`users_fold` is upper case without accents. `unaccent()` itself is only STABLE (its dictionary
could change), so it cannot be indexed; the standard pattern is an IMMUTABLE wrapper that names
its dictionary with the schema, so no search_path can change what it returns. Being IMMUTABLE
(and not inlined, its body being less so), it is what the trigram GIN indexes are built on,
and the planner folds `users_fold('word')` into a constant pattern before picking them.

The `UPPER(name)` trigram indexes of 0004 stay: the query language's `*ann*` still uses them.
`UPPER("external_id")` serves the external id compared without case (`iexact`).

PostgreSQL only, as 0004: on SQLite the same function is registered by `users.apps` on each
connection, and every operation here is a no-op. Built CONCURRENTLY, hence `atomic = False`.
"""

from django.db import migrations


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL that does nothing on other databases; the model state is never touched."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def index(name: str, definition: str) -> PostgresOnlySQL:
    return PostgresOnlySQL(
        sql=f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON users_user {definition}",
        reverse_sql=f"DROP INDEX CONCURRENTLY IF EXISTS {name}",
    )


FOLD_FUNCTION = """
CREATE OR REPLACE FUNCTION users_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT upper(public.unaccent('public.unaccent'::regdictionary, $1)) $$
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("users", "0007_security_events")]

    operations = [
        # unaccent is a trusted extension: the database owner may create it.
        PostgresOnlySQL(
            sql="CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public",
            reverse_sql=migrations.RunSQL.noop,
        ),
        PostgresOnlySQL(sql=FOLD_FUNCTION, reverse_sql="DROP FUNCTION IF EXISTS users_fold(text)"),
        index("user_first_name_fold_trgm", 'USING gin (users_fold("first_name") gin_trgm_ops)'),
        index("user_last_name_fold_trgm", 'USING gin (users_fold("last_name") gin_trgm_ops)'),
        index("user_external_id_upper_idx", '(UPPER("external_id"::text))'),
        # Statistics on the new expressions, for the planner's selectivity estimates.
        PostgresOnlySQL(sql="ANALYZE users_user", reverse_sql=migrations.RunSQL.noop),
    ]
