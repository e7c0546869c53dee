"""Execute one claimed Run: prepare its workspace, run its steps in order, record all."""

import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from runner.config.definition import RunDefinition
from runner.config.github import event_from_payload, is_commit_sha
from runner.config.pipelines import Step as StepDefinition
from runner.config.text import counted
from runner.execution.checkout import Checkout
from runner.execution.database import DatabaseUnavailable, Outage
from runner.execution.processes import ProcessOutcome, Stop, run_process
from runner.execution.sandbox import confine, sandbox_problem
from runner.execution.step_env import (
    GIT_ENV,
    deployment_variables,
    github_variables,
    step_environment,
)
from runner.execution.step_log import StepLog
from runner.execution.stop import WORKER_STOP
from runner.models import Run, Step
from runner.runs import lifecycle

logger = logging.getLogger(__name__)

CANCEL_CHECK_SECONDS = 0.5


@dataclass(frozen=True)
class StepSpec:
    name: str
    timeout: int
    env: dict[str, str] = field(default_factory=dict)
    # The command line, or None for the checkout hookrunner does itself.
    argv: list[str] | None = None


class RunError(Exception):
    """hookrunner cannot run it (not the steps' fault); the message says why."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def execute(run: Run) -> bool:
    """Claim the run and run it; False if it was no longer queued (cancelled meanwhile)."""
    if not lifecycle.claim(run, worker_name()):
        run.refresh_from_db(fields=["status"])
        logger.info("run=%s is %s, not started", run.pk, run.status)
        return False
    logger.info("run=%s repository=%s pipeline=%s started", run.pk, run.repository, run.pipeline)
    database = Outage(settings.DATABASE_OUTAGE_SECONDS)
    try:
        status, detail = _execute_claimed(run, database)
    except (RunError, DatabaseUnavailable) as error:
        status, detail = Run.Status.ERROR, str(error)
    except Exception as error:
        logger.exception("run=%s crashed", run.pk)
        status, detail = Run.Status.ERROR, f"hookrunner error: {type(error).__name__}: {error}"
    ended = []
    # However long the database is away, the run's end is recorded once it is back.
    database.wait_for(lambda: ended.append(lifecycle.finish(run, status, detail)), give_up=False)
    if ended[0]:
        logger.info("run=%s finished status=%s detail=%s", run.pk, status, detail)
    else:
        logger.warning("run=%s was marked %s meanwhile; its end (%s) is not recorded",
                       run.pk, run.status, status)  # fmt: skip
    return True


def _execute_claimed(run: Run, database: Outage) -> tuple[str, str]:
    root = Path(settings.WORKSPACES_DIR) / f"run-{run.pk}"
    root.mkdir(parents=True, exist_ok=True)
    keep = run.definition.keep_workspace
    try:
        return _Execution(run, root, database).run_steps()
    finally:
        if keep:
            # keep_workspace needs checkout: true, whose workspace is always this folder.
            run.kept_workspace = str(root / "workspace")
        else:
            shutil.rmtree(root, ignore_errors=True)


class _Execution:
    """One run's steps, with what every step of it shares: workspace, secrets, variables."""

    def __init__(self, run: Run, root: Path, database: Outage) -> None:
        self.run = run
        self.database = database
        self.definition: RunDefinition = run.definition
        self.secrets = _secret_values(self.definition.secrets)
        self.sandbox = self.definition.sandbox
        if self.sandbox.enabled and (problem := sandbox_problem()):
            raise RunError(
                f"the sandbox cannot start: {problem}; or write sandbox: off in pipeline "
                f"{self.definition.name} to run it without one"
            )
        self.root = root
        self.workspace = _workspace(self.definition, root)
        self.clone_url = _checkout_url(run, self.definition) if self.definition.checkout else ""
        event_path = root / "event.json"
        event_path.write_text(json.dumps(run.delivery.payload))
        event = event_from_payload(run.event, run.delivery.payload)
        self.github = {
            **github_variables(event, run.pk, run.sha, run.ref, str(event_path), self.workspace),
            **deployment_variables(run.environment, self.definition.inputs, run.inputs),
        }
        self.deadline = time.monotonic() + self.definition.timeout
        self.next_beat = time.monotonic() + settings.RUN_HEARTBEAT_SECONDS
        self.next_cancel_check = 0.0
        self.cancel_reason: str | None = None
        # Why the database stopped the run: it was away too long while a step ran.
        self.database_gone = ""

    def run_steps(self) -> tuple[str, str]:
        specs = _step_specs(self.definition)
        steps = lifecycle.start_steps(self.run, (spec.name for spec in specs))
        for step, spec in zip(steps, specs, strict=True):
            ending = self.before_step(spec)
            if ending is None:
                bounded_by_pipeline = self.remaining() < spec.timeout
                try:
                    outcome = self.run_step(step, spec)
                except DatabaseUnavailable as error:
                    return Run.Status.ERROR, f"{error}, during step {spec.name}"
                ending = self.ending(spec, outcome, bounded_by_pipeline)
            if ending is not None:
                return ending
        return Run.Status.SUCCEEDED, f"{counted(len(steps), 'step')} succeeded"

    def before_step(self, spec: StepSpec) -> tuple[str, str] | None:
        """Why the run ends before `spec` starts, or None if it may start."""
        if self.database.ongoing:
            return Run.Status.ERROR, f"{self.database.reason()}, before step {spec.name}"
        if self.should_stop() or WORKER_STOP.requested():
            return Run.Status.CANCELLED, f"{self.stop_cause()} before step {spec.name}"
        return None

    def run_step(self, step: Step, spec: StepSpec) -> ProcessOutcome:
        secrets = list(self.secrets.values())
        log = StepLog(step, secrets, settings.STEP_OUTPUT_LIMIT, self.database)

        def on_output(data: bytes) -> None:
            log.write(data)
            self.beat()

        if spec.argv is None:
            outcome = self.check_out(step, on_output)
        else:
            outcome = run_process(
                self.confined(spec.argv), env=self.environment(spec.env), cwd=self.workspace,
                on_output=on_output,
                on_start=lambda pid: self.database.attempt(
                    lambda: lifecycle.step_started(step, pid)
                ),
                should_cancel=self.should_stop,
                timeout=max(min(spec.timeout, self.remaining()), 0),
                grace=settings.STEP_KILL_GRACE_SECONDS, sandboxed=self.sandbox.enabled,
            )  # fmt: skip
        log.end()
        # The step has ended: its output and its end are recorded, however late.
        self.database.wait_for(log.store_rest, give_up=False)
        status = _step_status(outcome)

        def record_end() -> None:
            lifecycle.step_ended(step, status, outcome.exit_code)

        self.database.wait_for(record_end, give_up=False)
        return outcome

    def check_out(self, step: Step, on_output: Callable[[bytes], None]) -> ProcessOutcome:
        self.database.wait_for(lambda: lifecycle.step_started(step, None))
        deadline = self.deadline

        def stop_reason() -> Stop | None:
            if time.monotonic() >= deadline:
                return Stop.TIMEOUT
            return Stop.CANCEL if self.should_stop() else None

        return Checkout(
            url=self.clone_url, sha=self.run.sha,
            workspace=Path(self.workspace), mirrors=Path(settings.MIRRORS_DIR),
            env=self.git_environment(), stop_reason=stop_reason, on_output=on_output,
            on_start=lambda pid: self.database.attempt(lambda: step.record_pid(pid)),
            grace=settings.STEP_KILL_GRACE_SECONDS, sandbox=self.sandbox,
        ).run()  # fmt: skip

    def git_environment(self) -> dict[str, str]:
        """A step's environment, with the server's HOME: its SSH and git settings reach a
        private repository (the sandbox shows git only those)."""
        env = self.environment({}, GIT_ENV)
        return {**env, "HOME": os.environ.get("HOME", env["HOME"])}

    def confined(self, argv: list[str]) -> list[str]:
        """A step's command line, in its sandbox unless its pipeline has none."""
        if not self.sandbox.enabled:
            return argv
        # What it may write of hookrunner's own: its run's folder (workspace, HOME, event).
        return confine(
            argv, self.sandbox, cwd=self.workspace, writable=[str(self.root)],
            workdir=self.definition.workdir,
        )  # fmt: skip

    def environment(
        self, step_env: dict[str, str], defaults: dict[str, str] | None = None
    ) -> dict[str, str]:
        """What a step sees; `defaults` are there unless the pipeline's env sets them.
        A sandboxed step's HOME is its run's own, fresh for each run."""
        pipeline_env = {**(defaults or {}), **self.definition.env}
        server = {**os.environ, "HOME": str(self.home())} if self.sandbox.enabled else os.environ
        return step_environment(server, pipeline_env, step_env, self.secrets, self.github)

    def home(self) -> Path:
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        return home

    def ending(
        self, spec: StepSpec, outcome: ProcessOutcome, bounded_by_pipeline: bool
    ) -> tuple[str, str] | None:
        """How the run ends after this step, or None if it goes on."""
        if outcome.cancelled and self.database_gone:
            return Run.Status.ERROR, f"{self.database_gone}, during step {spec.name}"
        if outcome.cancelled:
            return Run.Status.CANCELLED, f"{self.stop_cause()} during step {spec.name}"
        if outcome.timed_out and bounded_by_pipeline:
            limit = self.definition.timeout
            return Run.Status.TIMED_OUT, f"pipeline timed out after {limit}s, in step {spec.name}"
        if outcome.timed_out:
            return Run.Status.TIMED_OUT, f"step {spec.name} timed out after {spec.timeout}s"
        if outcome.exit_code and spec.argv is None:
            return Run.Status.ERROR, f"checkout failed: git exited with {outcome.exit_code}"
        if outcome.exit_code:
            return Run.Status.FAILED, f"step {spec.name} failed with exit code {outcome.exit_code}"
        return None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def should_stop(self) -> bool:
        """Whether someone cancelled the run (the database is asked at most every
        CANCEL_CHECK_SECONDS), the worker was told to stop and its grace is over, or the
        database has been away too long."""
        if self.cancel_reason is None and time.monotonic() >= self.next_cancel_check:
            self.next_cancel_check = time.monotonic() + CANCEL_CHECK_SECONDS
            self.database.attempt(self.check_cancel, defer=False)
        if self.database.over_limit() and not self.database_gone:
            self.database_gone = self.database.reason()
        return self.cancel_reason is not None or WORKER_STOP.overdue() or bool(self.database_gone)

    def check_cancel(self) -> None:
        self.cancel_reason = self.run.cancel_reason()

    def stop_cause(self) -> str:
        return self.cancel_reason or "the worker was stopped"

    def beat(self) -> None:
        """Tell the reaper this run's worker is alive, every RUN_HEARTBEAT_SECONDS, and
        as soon as the database is back after an outage."""
        due = time.monotonic() >= self.next_beat or self.database.ongoing
        if due and self.database.attempt(self.run.beat, defer=False):
            self.next_beat = time.monotonic() + settings.RUN_HEARTBEAT_SECONDS


def _secret_values(names: tuple[str, ...]) -> dict[str, str]:
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise RunError(f"secret {', '.join(missing)} is not set in hookrunner's environment")
    return {name: os.environ[name] for name in names}


def _workspace(definition: RunDefinition, root: Path) -> str:
    if definition.workdir:
        if not Path(definition.workdir).is_dir():
            raise RunError(f"workdir {definition.workdir} is not a directory")
        return definition.workdir
    workspace = root / "workspace"
    workspace.mkdir(exist_ok=True)
    return str(workspace)


def _checkout_url(run: Run, definition: RunDefinition) -> str:
    """Where checkout clones from: pipelines.yaml's clone_url ({repository} is
    owner/name), else the payload's; RunError if this run cannot be checked out."""
    if not is_commit_sha(run.sha):
        raise RunError(f"checkout: {run.sha!r} is not a commit sha")
    if definition.clone_url:
        return definition.clone_url.replace("{repository}", run.repository)
    url = (run.delivery.payload.get("repository") or {}).get("clone_url")
    if not isinstance(url, str) or not url:
        raise RunError("checkout: the payload has no repository.clone_url; set clone_url")
    return url


def _step_specs(definition: RunDefinition) -> list[StepSpec]:
    specs = [_command_step(step) for step in definition.steps]
    if definition.checkout:
        specs.insert(0, StepSpec("checkout", definition.timeout))
    return specs


def _command_step(step: StepDefinition) -> StepSpec:
    # The step's text is one argument of the shell; nothing is pasted into it.
    return StepSpec(step.name, step.timeout, step.env, [*step.shell, step.run])


def _step_status(outcome: ProcessOutcome) -> str:
    if outcome.cancelled:
        return Step.Status.CANCELLED
    if outcome.timed_out:
        return Step.Status.TIMED_OUT
    return Step.Status.SUCCEEDED if outcome.exit_code == 0 else Step.Status.FAILED
