"""What follows the end of a run, whoever ended it (its worker, a cancel, the reaper, a
skip): its final commit status and notifications are queued, and the runs that need it
are settled."""

from runner.models import Run
from runner.needs import settle_waiting
from runner.outgoing import queue_ended


def run_ended(run: Run) -> None:
    ended = [run]
    while ended:
        finished = ended.pop()
        if finished is not run:
            finished.refresh_from_db()  # skipped by settle_waiting, which updated the row
        queue_ended(finished)
        if finished.sha:
            ended.extend(settle_waiting(finished.repository, finished.sha))
