from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Seeders and the benchmark: installed with DEBUG or DEVTOOLS=1, never in production."""

    name = "console.devtools"
    label = "devtools"
    verbose_name = "Developer tools"
