"""What follows the end of a run, whoever ended it (its worker, a cancel, the reaper, a
skip): the runs that need it are settled."""

from runner.models import Run
from runner.needs import settle_waiting


def run_ended(run: Run) -> None:
    ended = [run]
    while ended:
        finished = ended.pop()
        if finished.sha:
            ended.extend(settle_waiting(finished.repository, finished.sha))
