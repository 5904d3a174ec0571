"""The Django admin app, with the console's admin site as the default `admin.site`."""

from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    # Django's way to replace the default site: `admin.site` (used by `@admin.register` in
    # users/admin.py and by console/urls.py) becomes this class.
    default_site = "console.admin_site.ConsoleAdminSite"
