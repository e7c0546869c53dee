"""The background task that executes one Run, queued by the receiver."""

from django.tasks import task

from runner.models import Run


@task()
def execute_run(run_id: int) -> None:
    run = Run.objects.get(pk=run_id)
    # Executing steps is the next piece of work; until it lands no worker is started, so
    # queued runs wait in the database and nothing pretends to have run them.
    raise NotImplementedError(f"run={run.pk}: executing pipelines is not built yet")
