"""The background task that executes one Run, queued by the receiver."""

from django.tasks import TaskContext, task

from runner import worker
from runner.models import Run


@task(takes_context=True)
def execute_run(context: TaskContext) -> None:
    """Execute the Run created together with this task (it holds this task's id)."""
    worker.execute(Run.objects.get(task_id=context.task_result.id))
