from django.apps import AppConfig


class RunnerConfig(AppConfig):
    name = "runner"
    verbose_name = "hookrunner"

    def ready(self) -> None:
        from runner.config import checks  # noqa: F401  registers the system checks
