"""What follows the end of a run, whoever ended it (its worker, a cancel, the reaper, a
skip): its final commit status and notifications are queued, and the runs that need it
are settled."""

from runner.models import Run
from runner.outgoing.queue import queue_ended
from runner.runs.needs import settle_waiting


def run_ended(run: Run) -> None:
    runs_ended([run])


def runs_ended(ended: list[Run]) -> None:
    """run_ended for each of `ended`, and for each run their ends skip in turn."""
    while ended:
        finished = ended.pop()
        queue_ended(finished)
        if finished.sha:
            ended.extend(settle_waiting(finished.repository, finished.sha))
