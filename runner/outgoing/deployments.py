"""GitHub deployments of runs whose pipeline names an environment."""

from runner.models import Run


def queue_deployments(runs: list[Run]) -> None:
    """A GitHub deployment, with its `queued` status, for each new run of an environment."""


def queue_in_progress(run: Run) -> None:
    """The `in_progress` status of a claimed run's GitHub deployment."""
