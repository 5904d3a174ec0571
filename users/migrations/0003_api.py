"""Reserved for the JSON API's tables (tokens, idempotency keys). Later migrations depend on it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("users", "0002_roles")]

    operations = []
