"""Back office reads the status and version history (issue 11.9): they correct records, so they
see what changed, when and by whom. Read-only: history has no write path for anyone."""

from django.db import migrations


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="users", codename="view_history")
    Group.objects.get(name="back_office").permissions.add(permission)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="users", codename="view_history")
    Group.objects.get(name="back_office").permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [("users", "0009_console_sessions")]

    operations = [migrations.RunPython(grant, revoke)]
