"""Four-eyes approval (issue 12): change requests, the checker on a version, and who approves.

`approve_change` goes to admin and compliance: compliance checks payout accounts (the money
leaving a portfolio is their concern) without being able to make the change themselves; role
and CONSOLE grants are approved only by those who may make them (admins, `users.policy`).
"""

import django.db.models.deletion
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

APPROVERS = ("admin", "compliance")


def grant(apps, schema_editor):
    # Permissions are normally made after all migrations; the groups need this one now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="users", codename="approve_change")
    for group in Group.objects.filter(name__in=APPROVERS):
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.filter(
        content_type__app_label="users", codename="approve_change"
    ).first()
    if permission is not None:
        for group in Group.objects.filter(name__in=APPROVERS):
            group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0013_client_file_permission"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="user",
            options={
                "ordering": ["-creation_datetime", "-id"],
                "permissions": [
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
                ],
            },
        ),
        migrations.AddField(
            model_name="userversion",
            name="approved_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="securityevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("SIGN_IN", "Signed in"),
                    ("SIGN_IN_FAILED", "Sign-in failed"),
                    ("SECOND_FACTOR_FAILED", "Second factor failed"),
                    ("LOCKED_OUT", "Locked out"),
                    ("UNLOCKED", "Unlocked"),
                    ("SIGN_OUT", "Signed out"),
                    ("SESSION_ENDED", "Sessions ended"),
                    ("FACTOR_ENROLLED", "Factor enrolled"),
                    ("FACTOR_RESET", "Factors reset"),
                    ("RECOVERY_CODE_USED", "Recovery code used"),
                    ("STEP_UP", "Second factor re-checked"),
                    ("TOKEN_ISSUED", "API token issued"),
                    ("TOKEN_REVOKED", "API token revoked"),
                    ("ROLE_GRANTED", "Role granted"),
                    ("ROLE_REVOKED", "Role revoked"),
                    ("PASSWORD_CHANGED", "Password changed"),
                    ("CHANGE_APPROVED", "Guarded change approved"),
                    ("CHANGE_REJECTED", "Guarded change rejected"),
                ],
                max_length=32,
            ),
        ),
        migrations.CreateModel(
            name="ChangeRequest",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("counter_account", "Counter account"),
                            ("roles", "Console roles"),
                            ("console_flag", "Console access (CONSOLE flag)"),
                        ],
                        max_length=16,
                    ),
                ),
                ("changes", models.JSONField(default=dict)),
                ("base_version", models.PositiveIntegerField()),
                ("reason", models.TextField(blank=True, default="")),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("PENDING", "Pending"),
                            ("APPROVED", "Approved"),
                            ("REJECTED", "Rejected"),
                            ("WITHDRAWN", "Withdrawn"),
                            ("EXPIRED", "Expired"),
                            ("VOID", "Void"),
                        ],
                        default="PENDING",
                        max_length=10,
                    ),
                ),
                ("proposed_at", models.DateTimeField()),
                ("expires_at", models.DateTimeField()),
                ("decided_at", models.DateTimeField(blank=True, null=True)),
                ("decision_reason", models.TextField(blank=True, default="")),
                ("applied_version", models.PositiveIntegerField(blank=True, null=True)),
                (
                    "decided_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "proposed_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="change_requests",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["proposed_at", "id"],
                "indexes": [
                    models.Index(fields=["state", "proposed_at"], name="change_request_state_idx"),
                    models.Index(fields=["user", "-proposed_at"], name="change_request_user_idx"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("state", "PENDING")),
                        fields=("user", "kind"),
                        name="change_request_one_pending",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("kind__in", ["counter_account", "roles", "console_flag"])
                        ),
                        name="change_request_kind_valid",
                    ),
                ],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
