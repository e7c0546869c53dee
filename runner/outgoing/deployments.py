"""GitHub deployments of runs whose pipeline names an environment: creating their
Outgoing rows, in the transactions of the run lifecycle.

What they say and when they may go is in runner.outgoing.deployment_requests; the final
status of an ended run, and `inactive` for the deployment it replaces, are queued with its
other news by runner.outgoing.queue.queue_ended. They are sent like commit statuses: same
task, queue, retries and records.
"""

from runner.models import Outgoing, Run
from runner.outgoing.deployment_requests import (
    deployment_body,
    deployments_url,
    deploys,
    has_deployment,
    queued_body,
    status_body,
)
from runner.outgoing.queue import create


def queue_deployments(runs: list[Run]) -> None:
    """A GitHub deployment, with its `queued` status, for each new run of an environment."""
    for run in runs:
        if deploys(run):
            url = deployments_url(run)
            create(run, Outgoing.Kind.DEPLOYMENT, url, deployment_body(run))
            create(run, Outgoing.Kind.DEPLOYMENT_STATUS, url, queued_body(run))


def queue_in_progress(run: Run) -> None:
    """The `in_progress` status of a claimed run's GitHub deployment."""
    if has_deployment(run):
        body = status_body(run, "in_progress", "running")
        create(run, Outgoing.Kind.DEPLOYMENT_STATUS, deployments_url(run), body)
