"""PostgreSQL indexes for the console's searches and lists at a million users (issue 4).

Each index matches the SQL Django really emits (checked with EXPLAIN ANALYZE at 1M rows):

- `icontains` is `UPPER("col"::text) LIKE UPPER('%ann%')`: trigram GIN indexes on the same
  `UPPER(...)` expressions serve substring search on names and email.
- `iexact` / `istartswith` on email are `UPPER("email"::text) = / LIKE UPPER(...)`: a btree on
  that expression with `text_pattern_ops` serves both (the database collation is not "C", so a
  plain btree cannot serve a LIKE prefix).
- The default lists hide deleted users and sort by creation, newest first: partial indexes
  `WHERE NOT deleted` let counts and deep pages run as index-only scans, and the board's columns
  (one status, longest waiting first) read 25 index entries.
- The board's column counts: a grouped count over a million rows is a full scan (hundreds of ms
  on two cores) however it is indexed, so `users_status_count` keeps them, maintained by
  statement-level triggers (one grouped delta per statement, so a COPY of 50,000 rows updates
  each counter once). `selectors.status_counts` reads it when the board is not filtered.

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


# One DO block, so one transaction: the table, the triggers and the initial counts appear
# together, under the lock CREATE TRIGGER takes, and no write can slip between them.
STATUS_COUNTS = r"""
DO $do$
BEGIN
    CREATE TABLE IF NOT EXISTS users_status_count (
        status varchar(32) NOT NULL,
        deleted boolean NOT NULL,
        n bigint NOT NULL,
        PRIMARY KEY (status, deleted)
    );

    CREATE OR REPLACE FUNCTION users_status_count_apply() RETURNS trigger
    LANGUAGE plpgsql AS $fn$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            DELETE FROM users_status_count;
            RETURN NULL;
        END IF;
        -- Rows are upserted in key order so that two writers never wait on each other in a cycle.
        IF TG_OP = 'INSERT' THEN
            INSERT INTO users_status_count AS c (status, deleted, n)
            SELECT status, deleted, count(*) FROM new_rows
            GROUP BY status, deleted ORDER BY status, deleted
            ON CONFLICT (status, deleted) DO UPDATE SET n = c.n + EXCLUDED.n;
        ELSIF TG_OP = 'DELETE' THEN
            UPDATE users_status_count AS c SET n = c.n - d.n
            FROM (SELECT status, deleted, count(*) AS n FROM old_rows GROUP BY status, deleted) d
            WHERE c.status = d.status AND c.deleted = d.deleted;
        ELSE
            -- Most updates change neither column: the HAVING leaves nothing to write.
            INSERT INTO users_status_count AS c (status, deleted, n)
            SELECT status, deleted, sum(delta) FROM (
                SELECT status, deleted, 1 AS delta FROM new_rows
                UNION ALL
                SELECT status, deleted, -1 AS delta FROM old_rows
            ) d
            GROUP BY status, deleted HAVING sum(delta) <> 0 ORDER BY status, deleted
            ON CONFLICT (status, deleted) DO UPDATE SET n = c.n + EXCLUDED.n;
        END IF;
        RETURN NULL;
    END
    $fn$;

    DROP TRIGGER IF EXISTS users_status_count_insert ON users_user;
    DROP TRIGGER IF EXISTS users_status_count_update ON users_user;
    DROP TRIGGER IF EXISTS users_status_count_delete ON users_user;
    DROP TRIGGER IF EXISTS users_status_count_truncate ON users_user;
    CREATE TRIGGER users_status_count_insert AFTER INSERT ON users_user
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION users_status_count_apply();
    CREATE TRIGGER users_status_count_update AFTER UPDATE ON users_user
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION users_status_count_apply();
    CREATE TRIGGER users_status_count_delete AFTER DELETE ON users_user
        REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION users_status_count_apply();
    CREATE TRIGGER users_status_count_truncate AFTER TRUNCATE ON users_user
        FOR EACH STATEMENT EXECUTE FUNCTION users_status_count_apply();

    DELETE FROM users_status_count;
    INSERT INTO users_status_count (status, deleted, n)
    SELECT status, deleted, count(*) FROM users_user GROUP BY status, deleted;
END
$do$;
"""
DROP_STATUS_COUNTS = """
DROP TRIGGER IF EXISTS users_status_count_insert ON users_user;
DROP TRIGGER IF EXISTS users_status_count_update ON users_user;
DROP TRIGGER IF EXISTS users_status_count_delete ON users_user;
DROP TRIGGER IF EXISTS users_status_count_truncate ON users_user;
DROP FUNCTION IF EXISTS users_status_count_apply();
DROP TABLE IF EXISTS users_status_count;
"""


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
        index(
            "user_live_status_idx",
            '("status", "status_changed_at", "id") WHERE NOT "deleted"',
        ),
        PostgresOnlySQL(sql=[STATUS_COUNTS], reverse_sql=[DROP_STATUS_COUNTS]),
        # Statistics on the new index expressions: without them the planner guesses the
        # selectivity of UPPER(email) = ... and walks the creation index instead.
        PostgresOnlySQL(sql="ANALYZE users_user", reverse_sql=migrations.RunSQL.noop),
    ]
