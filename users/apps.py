from django.apps import AppConfig
from django.db.backends.signals import connection_created


class UsersConfig(AppConfig):
    name = "users"
    verbose_name = "Users"

    def ready(self) -> None:
        # The manager's create_user / create_superuser write through the services; models
        # cannot import them (the arrows point down), so the app hands the service over here.
        from users.models import UserManager
        from users.services import user_create

        UserManager.create_service = staticmethod(user_create)
        from django.core import checks

        from users.sla import check_targets

        checks.register(check_targets)
        connection_created.connect(_register_sqlite_functions)


def _register_sqlite_functions(sender, connection, **kwargs) -> None:
    """SQLite's `users_fold`, the search's accent- and case-free text (PostgreSQL's comes
    from migration 0007). Deterministic, so SQLite may use it in indexes and fold constants."""
    if connection.vendor == "sqlite":
        from users.chain import link_text
        from users.models import CHAIN_LINK_FUNCTION, FOLD_FUNCTION, fold

        connection.connection.create_function(FOLD_FUNCTION, 1, fold, deterministic=True)
        connection.connection.create_function(CHAIN_LINK_FUNCTION, 2, link_text, deterministic=True)
