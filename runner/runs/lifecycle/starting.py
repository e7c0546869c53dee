"""New runs: those a delivery starts, those a person starts by hand or to roll back, and
re-runs; and what follows their creation."""

from runner.config.definition import RunDefinition
from runner.config.github import Event
from runner.config.matching import is_from_fork
from runner.config.pipelines import Pipeline
from runner.models import Run, clipped
from runner.models.db import write_transaction
from runner.outgoing.deployment_requests import deploys
from runner.outgoing.deployments import queue_deployments
from runner.outgoing.queue import queue_started
from runner.runs.concurrency import older_in_line
from runner.runs.lifecycle.ending import Cancel, after_end, cancel_run, settle
from runner.runs.lifecycle.waits import Stage, entry

# What a re-run takes over from the run it repeats.
REPEATED_FIELDS = (
    "delivery_id", "repository", "pipeline", "event", "sha", "ref", "pr_number", "from_fork",
    "definition", "queue", "concurrency_group", "environment", "inputs",
)  # fmt: skip


def create_runs(delivery_pk: int, event: Event, pipelines: list[Pipeline]) -> list[int]:
    """A run per pipeline, queued with its task or waiting; their ids. Call inside the
    caller's write_transaction: a delivery's outcome commits with its runs."""
    from_fork = is_from_fork(event)
    taken: set[str] = set()
    runs = []
    for pipeline in pipelines:
        definition = RunDefinition.of(pipeline, from_fork)
        runs.append(
            Run(
                delivery_id=delivery_pk,
                pr_number=event.pr_number,
                from_fork=from_fork,
                definition=definition,
                queue=definition.runs_on,
                **entry(definition, event.repository, taken, Stage.NEEDS),
                **clipped(
                    Run,
                    repository=event.repository,
                    pipeline=pipeline.name,
                    event=event.name,
                    sha=event.sha,
                    ref=event.ref,
                    concurrency_group=definition.concurrency_group,
                    environment=definition.environment_name,
                ),
            )
        )
    admit(Run.objects.bulk_create(runs))
    return [run.pk for run in runs]


def create_manual_run(delivery_pk: int, pipeline: Pipeline, started: dict, by: str) -> Run:
    """A run a person started (`started`: repository, sha, ref, inputs, and for a rollback
    rollback_of and reason). Call inside the caller's write_transaction, with its delivery.
    A rollback does not wait for what its pipeline needs: its commit was deployed before."""
    definition = RunDefinition.of(pipeline, from_fork=False)
    rollback_of = started.get("rollback_of")
    first = Stage.APPROVAL if rollback_of else Stage.NEEDS
    run = Run.objects.create(
        delivery_id=delivery_pk,
        definition=definition,
        queue=definition.runs_on,
        inputs=started.get("inputs") or {},
        rollback_of=rollback_of,
        **entry(definition, started["repository"], set(), first),
        **clipped(
            Run,
            repository=started["repository"],
            pipeline=pipeline.name,
            event="manual",
            sha=started["sha"],
            ref=started.get("ref", ""),
            concurrency_group=definition.concurrency_group,
            environment=definition.environment_name,
            requested_by=by,
            reason=started.get("reason", ""),
        ),
    )
    admit([run])
    return run


def rerun(run: Run, by: str = "") -> Run:
    """A new run of the same definition, commit and delivery; `by` is who asked for it.
    Asked for by a person, it does not wait for what its pipeline needs."""
    with write_transaction():
        again = Run.objects.create(
            **{name: getattr(run, name) for name in REPEATED_FIELDS},
            **entry(run.definition, run.repository, set(), Stage.APPROVAL),
            rerun_of=run,
            **clipped(Run, rerun_by=by),
        )
        admit([again])
        return again


def admit(runs: list[Run]) -> None:
    """What follows new runs: their pending commit statuses, older runs of their group
    cancelled where they cancel in progress, needs that are decided already, and a GitHub
    deployment for each run of an environment still on its way (one skipped at once
    deploys nothing: GitHub is not told of it)."""
    queue_started(runs)
    for run in runs:
        if run.waiting_for == Run.WaitingFor.TURN and run.definition.cancels_in_progress:
            cancel_older(run)
    for repository, sha in {
        (r.repository, r.sha) for r in runs if r.waiting_for == Run.WaitingFor.NEEDS
    }:
        after_end(settle(repository, sha))
    if deploying := [run.pk for run in runs if deploys(run)]:
        # Read back: settling may have ended them, or their copies in `runs`.
        on_their_way = Run.objects.filter(pk__in=deploying).exclude(status__in=Run.ENDED)
        queue_deployments(list(on_their_way.order_by("pk")))


def cancel_older(run: Run) -> None:
    group = run.concurrency_group
    why = f"cancelled by run {run.pk}, newer in concurrency group {group}"
    ended = [other for other in older_in_line(run) if cancel_run(other, why) == Cancel.CANCELLED]
    # Their ends give the turn on: to this run, unless an older one is still running.
    after_end(ended)
