"""Tamper evidence for the access log (issue 13.2): seals over stretches of its rows."""

import django.utils.timezone
import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0016_reveal_personal_data"),
    ]

    operations = [
        migrations.CreateModel(
            name="AccessSeal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("sealed_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("first_id", models.BigIntegerField(unique=True)),
                ("last_id", models.BigIntegerField()),
                ("row_count", models.PositiveIntegerField()),
                ("previous_hash", models.CharField(blank=True, max_length=64)),
                ("chain_hash", models.CharField(max_length=64)),
            ],
            options={
                "ordering": ["first_id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("last_id__gte", models.F("first_id"))),
                        name="access_seal_range",
                    )
                ],
            },
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="accessseal",
            trigger=pgtrigger.compiler.Trigger(
                name="append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="RAISE EXCEPTION USING ERRCODE = 'restrict_violation', MESSAGE = 'users_accessseal is append-only: its rows are never changed or removed.';",
                    hash="3a81931e21f146335ea9e7627f5d84f7e9dbd40a",
                    operation="UPDATE OR DELETE",
                    pgid="pgtrigger_append_only_b2572",
                    table="users_accessseal",
                    when="BEFORE",
                ),
            ),
        ),
    ]
