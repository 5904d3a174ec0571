from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    verbose_name = "Users"

    def ready(self) -> None:
        # The manager's create_user / create_superuser write through the services; models
        # cannot import them (the arrows point down), so the app hands the service over here.
        from users.models import UserManager
        from users.services import user_create

        UserManager.create_service = staticmethod(user_create)
