"""The background task that executes one Run, queued by the receiver."""

from django.tasks import TaskContext, task

from runner.models import Run


@task(takes_context=True)
def execute_run(context: TaskContext) -> None:
    """Execute the Run created together with this task (it holds this task's id)."""
    run = Run.objects.get(task_id=context.task_result.id)
    # Executing steps is the next piece of work; until it lands no worker is started, so
    # queued runs wait in the database and nothing pretends to have run them.
    raise NotImplementedError(f"run={run.pk}: executing pipelines is not built yet")
