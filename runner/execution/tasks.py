"""The background task that executes one Run. runner.runs.queue enqueues it by its path."""

from django.tasks import TaskContext, task

from runner.execution.stop import WORKER_STOP
from runner.models import Run
from runner.runs.lifecycle import hand_back


@task(takes_context=True)
def execute_run(context: TaskContext) -> None:
    """Execute the Run created together with this task (it holds this task's id)."""
    # Only workers execute runs: the receiver, which enqueues this task by its path, never
    # loads the executor, git and all that comes with them.
    from runner.execution import worker

    run = Run.objects.filter(task_id=context.task_result.id).first()
    if run is None:
        return  # its run was deleted
    if WORKER_STOP.requested():
        # For another worker, or this one restarted.
        hand_back(run)
    else:
        worker.execute(run)
