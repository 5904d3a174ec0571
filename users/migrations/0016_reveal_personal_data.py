"""Compliance and admins may reveal masked personal data (issue 13.3), each reveal logged with
its purpose; back office works with the masks."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = ("compliance", "admin")
CODENAME = "reveal_personal_data"


def grant(apps, schema_editor):
    # Permissions are normally made after all migrations; the groups need this one now.
    app_config = apps.get_app_config("users")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="users", codename=CODENAME)
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="users", codename=CODENAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0015_access_log"),
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
                    ("view_access_log", "Can read who viewed, exported and read users"),
                    ("reveal_personal_data", "Can reveal masked personal data, with a purpose"),
                ],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
