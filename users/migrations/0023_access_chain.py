"""Issue 13.2: each access row carries the hash of its content and of the previous row of the
same actor. Adds the two hashes, the SQL function the INSERT computes them with on PostgreSQL
(`users_chain_link`; SQLite's is registered in Python), chains the rows written before, then
adds the index of each actor's head and the constraints that keep each chain a line."""

from django.db import migrations, models

from users import chain

CHUNK = 2000

LINK_FUNCTION = r"""
CREATE OR REPLACE FUNCTION users_chain_link(previous text, content text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT encode(sha256(convert_to(previous || E'\n' || content, 'UTF8')), 'hex') $$
"""


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL that does nothing on other databases; the model state is never touched."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def chain_earlier_rows(apps, schema_editor):
    """Chain the access rows written before this migration, per actor in id order. The table
    is append-only (0015): its triggers step aside for this, the table owner's own migration,
    and only here."""
    AccessEvent = apps.get_model("users", "AccessEvent")
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute("ALTER TABLE users_accessevent DISABLE TRIGGER USER")
    heads: dict[str | None, str] = {}
    changed = []
    rows = AccessEvent.objects.order_by("pk").iterator(chunk_size=CHUNK)
    for row in rows:
        previous = heads.get(row.actor_id, chain.GENESIS)
        row.previous_hash = previous
        row.chain_hash = chain.link(previous, chain.access_row_content(row))
        heads[row.actor_id] = row.chain_hash
        changed.append(row)
        if len(changed) == CHUNK:
            AccessEvent.objects.bulk_update(changed, ["previous_hash", "chain_hash"])
            changed = []
    AccessEvent.objects.bulk_update(changed, ["previous_hash", "chain_hash"])
    if postgres:
        schema_editor.execute("ALTER TABLE users_accessevent ENABLE TRIGGER USER")
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0022_dashboard"),
    ]

    operations = [
        migrations.AddField(
            model_name="accessevent",
            name="chain_hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="accessevent",
            name="previous_hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        PostgresOnlySQL(
            sql=LINK_FUNCTION, reverse_sql="DROP FUNCTION IF EXISTS users_chain_link(text, text)"
        ),
        migrations.RunPython(chain_earlier_rows, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="accessevent",
            index=models.Index(fields=["actor", "-id"], name="access_event_actor_id"),
        ),
        migrations.AddConstraint(
            model_name="accessevent",
            constraint=models.UniqueConstraint(
                fields=("actor", "previous_hash"), name="access_event_chain_once"
            ),
        ),
        migrations.AddConstraint(
            model_name="accessevent",
            constraint=models.UniqueConstraint(
                condition=models.Q(("actor", None)),
                fields=("previous_hash",),
                name="access_event_system_chain_once",
            ),
        ),
    ]
