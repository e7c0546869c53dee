"""What GitHub deployments and their statuses say, and when a status may go.

A run of a pipeline with an environment, a commit and a token_env gets one GitHub
deployment (an Outgoing DEPLOYMENT row) and statuses for it (DEPLOYMENT_STATUS rows):
`queued`, `in_progress`, then `success`, `failure`, `error` (or `inactive` for a skipped
run, which deployed nothing and failed nothing); a run that succeeds also makes the
previous live deployment of its environment `inactive`.

GitHub answers the deployment with its id, kept on the run (github_deployment_id); a
status's URL needs that id, so its row holds the deployments URL and the id is added when
sending. A status waits while its deployment is being tried, gives up when that gave up,
and follows the earlier statuses of the same deployment.

Pure builders and queries: runner.outgoing.deployments and runner.outgoing.queue create the
rows, runner.outgoing.attempt sends them; this module imports neither (no cycle).
"""

from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from runner.models import Outgoing, Run
from runner.models.statuses import look_of
from runner.outgoing.bodies import DESCRIPTION_LIMIT, final_status_body, one_line, run_page_url

# Outdated once the run has ended: its final status says more.
EARLY_STATES = frozenset({"queued", "in_progress"})


def deploys(run: Run) -> bool:
    """Whether the run gets a GitHub deployment: an environment, a commit and a token."""
    definition = run.definition
    return definition.environment is not None and bool(run.sha and definition.token_env)


def has_deployment(run: Run) -> bool:
    """Whether a deployment was queued for the run (its statuses need one)."""
    return (
        bool(run.environment)
        and Outgoing.objects.filter(run=run, kind=Outgoing.Kind.DEPLOYMENT).exists()
    )


def deployments_url(run: Run) -> str:
    return f"{settings.GITHUB_API_URL}/repos/{run.repository}/deployments"


def statuses_url(outgoing: Outgoing, run: Run) -> str:
    """Where a status of the run's deployment goes, once GitHub gave that deployment an id."""
    return f"{outgoing.url}/{run.github_deployment_id}/statuses"


# Bodies


def deployment_body(run: Run) -> dict[str, Any]:
    """No auto_merge and no required_contexts: the run deploys the commit it was given,
    whatever its other checks say (its pipeline's needs decide that). GitHub sets
    production_environment itself for an environment named production."""
    description = f"hookrunner run {run.pk} of {run.pipeline}"
    if run.rollback_of_id:
        description += f", rollback of run {run.rollback_of_id}"
    return {
        "ref": run.sha,
        "environment": run.definition.environment_name,
        "auto_merge": False,
        "required_contexts": [],
        "description": one_line(description, DESCRIPTION_LIMIT),
        "payload": {"run": run.pk, "pipeline": run.pipeline},
    }


def status_body(run: Run, state: str, description: str) -> dict[str, Any]:
    body = {
        "state": state,
        "environment": run.definition.environment_name,
        "description": one_line(description, DESCRIPTION_LIMIT),
    }
    if log_url := run_page_url(run):
        body["log_url"] = log_url
    environment = run.definition.environment
    if environment is not None and environment.url:
        body["environment_url"] = environment.url
    return body


def queued_body(run: Run) -> dict[str, Any]:
    # A waiting run's detail says what for (an approval, a lock, a run it needs).
    return status_body(run, "queued", run.detail if run.status == Run.Status.WAITING else "queued")


def final_body(run: Run) -> dict[str, Any]:
    """What the run's final commit status would say, in a deployment's terms."""
    state = look_of(run.status).github_state or "error"
    if state == "success" and run.status != Run.Status.SUCCEEDED:
        state = "inactive"  # skipped: nothing was deployed, and nothing failed
    return status_body(run, state, final_status_body(run)["description"])


def inactive_body(previous: Run, run: Run) -> dict[str, Any]:
    return status_body(previous, "inactive", f"replaced by run {run.pk}")


def previous_live(run: Run) -> Run | None:
    """The deployment `run` replaces by succeeding: the latest earlier run of its
    environment that succeeded with a GitHub deployment sent or still being tried."""
    earlier = Run.objects.deployments(run.repository, run.environment).filter(
        pk__lt=run.pk,
        status=Run.Status.SUCCEEDED,
        outgoing__kind=Outgoing.Kind.DEPLOYMENT,
        outgoing__state__in=[Outgoing.State.PENDING, Outgoing.State.SENT],
    )
    return earlier.first()


# Sending


def status_refusal(outgoing: Outgoing, run: Run) -> str:
    """Why this deployment status is not to be sent at all, or ""."""
    if outgoing.body.get("state") in EARLY_STATES and run.status in Run.ENDED:
        return "not sent: the run ended first; its final status is sent instead"
    deployment = _deployment_of(run)
    if deployment is None:
        return "not sent: the run has no GitHub deployment"
    if deployment.state == Outgoing.State.GAVE_UP:
        return f"not sent: the GitHub deployment was not created: {deployment.error}"
    return ""


def deployment_pending(run: Run) -> bool:
    """Whether the run's deployment is still being tried (its statuses wait for its id)."""
    deployment = _deployment_of(run)
    return deployment is not None and deployment.state == Outgoing.State.PENDING


def earlier_statuses(outgoing: Outgoing) -> QuerySet[Outgoing]:
    """The statuses of the same deployment made before this one and still being tried."""
    return Outgoing.objects.filter(
        run_id=outgoing.run_id,
        kind=Outgoing.Kind.DEPLOYMENT_STATUS,
        state=Outgoing.State.PENDING,
        pk__lt=outgoing.pk,
    )


def keep_deployment_id(run: Run, answer: Any) -> bool:
    """Keep the id GitHub answered for the run's deployment; False when it gave none."""
    deployment_id = answer.get("id") if isinstance(answer, dict) else None
    if not isinstance(deployment_id, int) or isinstance(deployment_id, bool):
        return False
    Run.objects.filter(pk=run.pk).update(github_deployment_id=deployment_id)
    run.github_deployment_id = deployment_id
    return True


def described(outgoing: Outgoing) -> str:
    """A deployment request in a few words, for logs and the run page."""
    body = outgoing.body if isinstance(outgoing.body, dict) else {}
    if outgoing.kind == Outgoing.Kind.DEPLOYMENT:
        return f"GitHub deployment to {body.get('environment')}: {body.get('description')}"
    return f"deployment status {body.get('state')}: {body.get('description')}"


def _deployment_of(run: Run) -> Outgoing | None:
    deployments = Outgoing.objects.filter(run=run, kind=Outgoing.Kind.DEPLOYMENT)
    return deployments.only("state", "error").first()
