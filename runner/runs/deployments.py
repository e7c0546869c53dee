"""What people do about deployments, for admin and the command line alike: start a
pipeline by hand, roll an environment back, approve or reject a waiting run, lock and
unlock an environment, and see what is live where. Each refuses what cannot be done with
DeployRefused, whose message says why; the state changes are runner.runs.lifecycle's.

Commits are resolved to a sha by the caller (runner.execution.refs, through the mirror)
before they reach here: this layer runs no git.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from runner.config.github import is_commit_sha
from runner.config.pipelines import Input, Pipeline
from runner.config.repositories import AmbiguousPipelines, Config
from runner.models import Delivery, EnvironmentLock, Run, clipped
from runner.models.db import write_transaction
from runner.outgoing.reconcile import LOCAL_HOOK_ID
from runner.runs import lifecycle

MANUAL_EVENT = "manual"
MANUAL_PREFIX = "manual-"

User = AbstractBaseUser | AnonymousUser


class DeployRefused(ValueError):
    """What a person asked for cannot be done; the message says why."""


# Starting by hand


def pipelines_of(config: Config, repository: str) -> tuple[Pipeline, ...]:
    """The pipelines pipelines.yaml gives `repository`."""
    covered = config.repository(repository)
    if covered is None:
        raise DeployRefused(f"no entry in {config.source} covers {repository}")
    try:
        return covered.pipelines
    except AmbiguousPipelines as error:
        raise DeployRefused(str(error)) from None


def check_environment(config: Config, repository: str, environment: str) -> None:
    """A name no pipeline of the repository deploys to is a typo: locking it would freeze
    nothing."""
    pipelines = pipelines_of(config, repository)
    names = sorted({p.environment.name for p in pipelines if p.environment is not None})
    if environment not in names:
        raise DeployRefused(
            f"no pipeline of {repository} deploys to {environment} "
            f"(its environments: {', '.join(names) or 'none'})"
        )


def pipeline_of(config: Config, repository: str, name: str) -> Pipeline:
    """`name` among the pipelines pipelines.yaml gives `repository`."""
    pipelines = pipelines_of(config, repository)
    found = next((pipeline for pipeline in pipelines if pipeline.name == name), None)
    if found is None:
        known = ", ".join(pipeline.name for pipeline in pipelines)
        raise DeployRefused(f"{repository} has no pipeline {name} (it has {known})")
    return found


def manual_pipeline(config: Config, repository: str, name: str) -> Pipeline:
    """A pipeline a person may start: one with `on: manual`."""
    pipeline = pipeline_of(config, repository, name)
    if pipeline.manual is None:
        raise DeployRefused(
            f"pipeline {name} of {repository} cannot be started by hand: add manual to its on:"
        )
    return pipeline


def input_values(pipeline: Pipeline, given: dict[str, str]) -> dict[str, str]:
    """The value of each of the pipeline's inputs: given, or its default."""
    inputs = pipeline.manual.inputs if pipeline.manual else ()
    known = {entry.name: entry for entry in inputs}
    unknown = sorted(set(given) - set(known))
    if unknown:
        names = ", ".join(known) or "none"
        raise DeployRefused(
            f"pipeline {pipeline.name} has no input {unknown[0]} (its inputs: {names})"
        )
    return {entry.name: _input_value(pipeline, entry, given.get(entry.name)) for entry in inputs}


def _input_value(pipeline: Pipeline, entry: Input, value: str | None) -> str:
    if value is None:
        if entry.default is None:
            raise DeployRefused(f"pipeline {pipeline.name} needs input {entry.name}")
        return entry.default
    if entry.choices and value not in entry.choices:
        choices = ", ".join(entry.choices)
        raise DeployRefused(f"input {entry.name} must be one of {choices}, not {value!r}")
    return value


def start(
    pipeline: Pipeline, repository: str, commit: "Commit", inputs: dict[str, str], by: str
) -> Run:
    """Start `pipeline` by hand at a resolved commit, with its inputs' values."""
    values = input_values(pipeline, inputs)
    started = {"repository": repository, "sha": commit.sha, "ref": commit.ref, "inputs": values}
    return _start(pipeline, started, by)


@dataclass(frozen=True)
class Commit:
    """A branch, tag or sha as resolved through the mirror: its sha, and its full ref
    (refs/heads/..., refs/tags/...) or "" for a bare sha."""

    sha: str
    ref: str = ""


def clone_url_of(repository: str, pipeline: Pipeline) -> str:
    """Where a repository's commits are fetched from: pipelines.yaml's clone_url, else the
    URL its latest delivery gave, else GitHub's."""
    if pipeline.clone_url:
        return pipeline.clone_url.replace("{repository}", repository)
    deliveries = Delivery.objects.filter(repository=repository).exclude(event=MANUAL_EVENT)
    for payload in deliveries.order_by("-pk").values_list("payload", flat=True)[:1]:
        url = (
            (payload.get("repository") or {}).get("clone_url")
            if isinstance(payload, dict)
            else None
        )
        if isinstance(url, str) and url:
            return url
    return f"https://github.com/{repository}.git"


# Rolling back


def rollback(
    config: Config, repository: str, environment: str, to: str, by: str, reason: str = ""
) -> Run:
    """Deploy an earlier commit to `environment` again: the sha `to` (a prefix will do) or,
    without it, the last one that succeeded there before the live one."""
    live = Run.objects.live(repository, environment)
    if live is None:
        raise DeployRefused(f"nothing has been deployed to {environment} of {repository} yet")
    succeeded = Run.objects.deployments(repository, environment).filter(status=Run.Status.SUCCEEDED)
    if to:
        matching = succeeded.filter(sha__startswith=to.lower())
        if len(set(matching.values_list("sha", flat=True)[:2])) > 1:
            raise DeployRefused(f"{to} names several commits deployed to {environment}: give more")
        target = matching.first()
        if target is None:
            raise DeployRefused(
                f"{to} never succeeded in {environment} of {repository}: nothing to go back to"
            )
    else:
        target = succeeded.filter(pk__lt=live.pk).exclude(sha=live.sha).first()
        if target is None:
            raise DeployRefused(
                f"{environment} of {repository} has no earlier successful deployment to go back to"
            )
    return deploy_again(config, target, by, reason)


def deploy_again(config: Config, target: Run, by: str, reason: str = "") -> Run:
    """A run of `target`'s pipeline as pipelines.yaml defines it now (its approval and
    lock apply) at `target`'s commit, marked as a rollback of what is live."""
    if target.status != Run.Status.SUCCEEDED or not target.environment:
        raise DeployRefused(f"run {target.pk} is not a successful deployment")
    pipeline = pipeline_of(config, target.repository, target.pipeline)
    live = Run.objects.live(target.repository, target.environment)
    started = {
        "repository": target.repository, "sha": target.sha, "ref": target.ref,
        "inputs": _inputs_again(pipeline, target.inputs), "rollback_of": live,
        "reason": reason,
    }  # fmt: skip
    return _start(pipeline, started, by)


def _inputs_again(pipeline: Pipeline, given: dict[str, str]) -> dict[str, str]:
    """The inputs an earlier run was given, as the pipeline takes them now: those it no
    longer has left out, new ones at their default (DeployRefused where one has none)."""
    inputs = pipeline.manual.inputs if pipeline.manual else ()
    kept = {entry.name: given[entry.name] for entry in inputs if entry.name in given}
    return input_values(pipeline, kept)


def _start(pipeline: Pipeline, started: dict[str, Any], by: str) -> Run:
    """A delivery standing for the person's request (shown among deliveries, read by the
    steps as GITHUB_EVENT_PATH), and its run, committed together."""
    if not is_commit_sha(started["sha"]):
        raise DeployRefused(f"{started['sha']!r} is not a commit sha")
    rollback_of = started.get("rollback_of")
    payload = {
        "ref": started.get("ref", ""),
        "sha": started["sha"],
        "inputs": started.get("inputs") or {},
        "rollback_of": rollback_of.pk if rollback_of else None,
        "reason": started.get("reason", ""),
        # Where checkout clones from when pipelines.yaml gives no clone_url.
        "repository": {
            "full_name": started["repository"],
            "clone_url": clone_url_of(started["repository"], pipeline),
        },
        "sender": {"login": by},
    }
    what = f"rollback of run {rollback_of.pk}" if rollback_of else "started by hand"
    with write_transaction():
        delivery = Delivery.objects.create(
            delivery_id=f"{MANUAL_PREFIX}{uuid.uuid4()}",
            event=MANUAL_EVENT,
            hook_id=LOCAL_HOOK_ID,
            payload=payload,
            status=Delivery.Status.ACCEPTED,
            **clipped(
                Delivery,
                repository=started["repository"],
                sender=by,
                ref=started.get("ref", ""),
                detail=f"{pipeline.name} {what} by {by}",
            ),
        )
        return lifecycle.create_manual_run(delivery.pk, pipeline, started, by)


# Approving


def may_approve(user: User, run: Run) -> bool:
    """Whether `user` may approve or reject `run`: one in the group its pipeline names as
    approvers, or with the approve_run permission where it names none; a superuser always."""
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    approval = run.definition.approval
    if approval is not None and approval.approvers:
        return user.groups.filter(name=approval.approvers).exists()
    return user.has_perm("runner.approve_run")


def approvers_of(run: Run) -> str:
    """Who may approve `run`, in words."""
    approval = run.definition.approval
    if approval is not None and approval.approvers:
        return f"members of the group {approval.approvers}"
    return "users with the permission to approve runs"


def decide(run: Run, approved: bool, by: str, reason: str = "") -> None:
    """Approve or reject `run`; DeployRefused if it is not waiting for approval."""
    done = lifecycle.approve(run, by, reason) if approved else lifecycle.reject(run, by, reason)
    if not done:
        raise DeployRefused(f"run {run.pk} is {run.status}, not waiting for approval")


# Environments


@dataclass(frozen=True)
class EnvironmentState:
    """One environment of one repository: what is live, what is on its way, its lock."""

    repository: str
    environment: str
    live: Run | None
    in_progress: Run | None
    lock: EnvironmentLock | None

    @property
    def url(self) -> str:
        run = self.live or self.in_progress
        environment = run.definition.environment if run is not None else None
        return environment.url if environment else ""


def environments(repository: str = "") -> list[EnvironmentState]:
    """Every environment runs were made for or that is locked, by repository and name."""
    runs = Run.objects.exclude(environment="")
    locks = EnvironmentLock.objects.all()
    if repository:
        runs, locks = runs.filter(repository=repository), locks.filter(repository=repository)
    pairs = set(runs.values_list("repository", "environment").distinct())
    pairs |= set(locks.values_list("repository", "environment"))
    return [_state(name, environment) for name, environment in sorted(pairs)]


def _state(repository: str, environment: str) -> EnvironmentState:
    unended = Run.objects.deployments(repository, environment).exclude(status__in=Run.ENDED)
    return EnvironmentState(
        repository,
        environment,
        Run.objects.live(repository, environment),
        unended.order_by("pk").first(),
        EnvironmentLock.objects.filter(repository=repository, environment=environment).first(),
    )
