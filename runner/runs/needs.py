"""Pipelines that need others: a run waits until the runs it needs for the same sha have
succeeded, then is released; if one of them ends any other way, it is skipped, saying why.
Here the decision; runner.runs.lifecycle acts on it."""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from runner.models import Run


class Readiness(Enum):
    READY = "ready"
    UNDECIDED = "undecided"
    SKIP = "skip"


@dataclass(frozen=True)
class Verdict:
    readiness: Readiness
    # Why it is skipped.
    why: str = ""


UNDECIDED = Verdict(Readiness.UNDECIDED)


def verdict(needs: tuple[str, ...], newest: Mapping[str, Run | None]) -> Verdict:
    """Whether a run needing `needs` may start, given the newest run of each at its sha."""
    for name in needs:
        needed = newest.get(name)
        if needed is None:
            return Verdict(
                Readiness.SKIP, f"skipped: it needs {name}, which has no run for this commit"
            )
        if needed.status not in Run.ENDED:
            return UNDECIDED
        if needed.status != Run.Status.SUCCEEDED:
            status = needed.get_status_display()
            return Verdict(
                Readiness.SKIP, f"skipped: it needs {name}, whose run {needed.pk} {status}"
            )
    return Verdict(Readiness.READY)


def newest_needed(waiting: list[Run]) -> dict[str, Run | None]:
    """The newest run of every pipeline the `waiting` runs (of one repository and sha)
    need: one indexed lookup per pipeline, however many runs the sha has."""
    names = {name for run in waiting for name in run.definition.needs}
    first = waiting[0]
    return {name: Run.objects.newest_of(first.repository, first.sha, name) for name in names}
