"""PostgreSQL indexes for the console's searches and lists at a million users (issue 4).

Each index matches the SQL Django really emits (checked with EXPLAIN ANALYZE at 1M rows):

- `icontains` is `UPPER("col"::text) LIKE UPPER('%ann%')`: trigram GIN indexes on the same
  `UPPER(...)` expressions serve substring search on names and email.
- `iexact` / `istartswith` on email are `UPPER("email"::text) = / LIKE UPPER(...)`: a btree on
  that expression with `text_pattern_ops` serves both (the database collation is not "C", so a
  plain btree cannot serve a LIKE prefix).
- The default lists hide deleted users and sort by creation, newest first: partial indexes
  `WHERE NOT deleted` let counts and deep pages run as index-only scans.

PostgreSQL only: on SQLite (dev, tests) every operation is a no-op. The indexes are built
CONCURRENTLY (hence `atomic = False`) so that deploying this on a live table does not block
writes; `IF NOT EXISTS` makes a retry after an interrupted build safe.
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


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("users", "0003_api")]

    operations = [
        # pg_trgm is a trusted extension: the database owner may create it.
        PostgresOnlySQL(
            sql="CREATE EXTENSION IF NOT EXISTS pg_trgm",
            reverse_sql=migrations.RunSQL.noop,
        ),
        index(
            "user_first_name_trgm",
            'USING gin (UPPER("first_name"::text) gin_trgm_ops)',
        ),
        index(
            "user_last_name_trgm",
            'USING gin (UPPER("last_name"::text) gin_trgm_ops)',
        ),
        index(
            "user_email_trgm",
            'USING gin (UPPER("email"::text) gin_trgm_ops)',
        ),
        index(
            "user_email_upper_idx",
            '(UPPER("email"::text) text_pattern_ops)',
        ),
        index(
            "user_live_created_idx",
            '("creation_datetime" DESC, "id" DESC) WHERE NOT "deleted"',
        ),
    ]
