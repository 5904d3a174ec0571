"""Create the console's role groups with their permissions (see `users.models.Role`)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "back_office": ("view_user", "add_user", "change_user", "delete_user", "export_users"),
    "compliance": (
        "view_user",
        "change_status",
        "change_status_off_flow",
        "view_history",
        "export_users",
    ),
    "admin": (
        "view_user",
        "add_user",
        "change_user",
        "delete_user",
        "export_users",
        "change_status",
        "change_status_off_flow",
        "view_history",
        "manage_feature_flags",
        "restore_user",
        "manage_roles",
        "manage_api_tokens",
    ),
}


def create_roles(apps, schema_editor):
    # Permissions are normally made after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="users", codename__in=codenames)
        )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
