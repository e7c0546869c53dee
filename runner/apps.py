from django.apps import AppConfig


class RunnerConfig(AppConfig):
    name = "runner"
    verbose_name = "hookrunner"

    def ready(self) -> None:
        from runner.config import checks  # noqa: F401  registers the system checks
        from runner.execution.sandbox import make_undumpable
        from runner.runs import wakeup

        # Every task enqueued, by any process, wakes the workers once it is committed.
        wakeup.connect()

        # Every hookrunner process (web, worker, `make run`'s supervisor, a command) holds
        # the secrets in its environment: no other process of its user may read them,
        # a step of a pipeline with sandbox: off included.
        make_undumpable()
