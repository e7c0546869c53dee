"""Queueing a run's execution: a django.tasks task on the run's queue, in the caller's
transaction, so a run and its task are committed together or not at all."""

from functools import cache

from django.tasks import Task
from django.utils.module_loading import import_string

# The worker's task, named by the path django-tasks stores and the worker imports it by:
# the lifecycle queues work for the worker without depending on it (import-linter holds
# that), and a receiver never loads the worker's code.
EXECUTE_RUN = "runner.execution.tasks.execute_run"


@cache
def _execute_run() -> Task:
    return import_string(EXECUTE_RUN)


def queue_execution(queue: str) -> str:
    """Enqueue an execute_run task on `queue`; its id, for the Run it will execute."""
    return str(_execute_run().using(queue_name=queue).enqueue().id)
