"""Execute one claimed Run: prepare its workspace, run its steps in order, record all."""

import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from runner.concurrency import CLAIMED, claim_in_turn
from runner.executor import ProcessOutcome, run_process
from runner.github import event_from_payload
from runner.models import Run, Step
from runner.step_env import github_variables, step_environment
from runner.step_log import StepLog
from runner.text import counted

logger = logging.getLogger(__name__)

CANCEL_CHECK_SECONDS = 1.0
# Payload values reach git only as environment variables, never in the command text.
CHECKOUT_SCRIPT = (
    'git init -q . && git fetch -q --depth 1 "$CHECKOUT_URL" "$GITHUB_SHA" '
    "&& git checkout -q --detach FETCH_HEAD && git log -1 --format='checked out %H %s'"
)


@dataclass(frozen=True)
class StepSpec:
    name: str
    argv: list[str]
    timeout: int
    env: dict[str, str]


class RunFailed(Exception):
    """The run cannot go on; the message is its one-line detail."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def execute(run: Run) -> str:
    """Run it if it is its turn; CLAIMED once done, or WAITING, or GONE (not queued)."""
    turn = claim_in_turn(run, worker_name())
    if turn != CLAIMED:
        logger.info("run=%s %s (status %s), not started", run.pk, turn, run.status)
        return turn
    logger.info("run=%s repository=%s pipeline=%s started", run.pk, run.repository, run.pipeline)
    try:
        status, detail = _execute_claimed(run)
    except RunFailed as failure:
        status, detail = Run.Status.FAILED, str(failure)
    except Exception as error:
        logger.exception("run=%s crashed", run.pk)
        status, detail = Run.Status.FAILED, f"hookrunner error: {type(error).__name__}: {error}"
    run.finish(status, detail)
    logger.info("run=%s finished status=%s detail=%s", run.pk, status, detail)
    return turn


def _execute_claimed(run: Run) -> tuple[str, str]:
    root = Path(settings.WORKSPACES_DIR) / f"run-{run.pk}"
    root.mkdir(parents=True, exist_ok=True)
    try:
        return _Execution(run, root).run_steps()
    finally:
        shutil.rmtree(root, ignore_errors=True)


class _Execution:
    """One run's steps, with what every step of it shares: workspace, secrets, variables."""

    def __init__(self, run: Run, root: Path) -> None:
        self.run = run
        self.definition: dict[str, Any] = run.definition
        self.secrets = _secret_values(self.definition["secrets"])
        self.workspace = _workspace(self.definition, root)
        event_path = root / "event.json"
        event_path.write_text(json.dumps(run.delivery.payload))
        event = event_from_payload(run.event, run.delivery.payload)
        self.github = github_variables(
            event, run.pk, run.sha, run.ref, str(event_path), self.workspace
        )
        self.deadline = time.monotonic() + self.definition["timeout"]
        self.next_beat = time.monotonic() + settings.RUN_HEARTBEAT_SECONDS
        self.next_cancel_check = 0.0
        self.cancelled = False

    def run_steps(self) -> tuple[str, str]:
        specs = _step_specs(self.definition, self.run)
        steps = Step.objects.bulk_create(
            Step(run=self.run, index=index, name=spec.name) for index, spec in enumerate(specs)
        )
        ending = None
        for step, spec in zip(steps, specs, strict=True):
            if ending is None and self.should_cancel():
                ending = (Run.Status.CANCELLED, f"cancelled before step {spec.name}")
            if ending is None:
                ending = _ending(spec, self.run_step(step, spec))
            else:
                step.status = Step.Status.SKIPPED
                step.save(update_fields=["status"])
        return ending or (Run.Status.SUCCEEDED, f"{counted(len(steps), 'step')} succeeded")

    def run_step(self, step: Step, spec: StepSpec) -> ProcessOutcome:
        env = step_environment(
            os.environ, self.definition["env"], spec.env, self.secrets, self.github
        )
        log = StepLog(step, list(self.secrets.values()), settings.STEP_OUTPUT_LIMIT)

        def on_output(data: bytes) -> None:
            log.write(data)
            self.beat()

        outcome = run_process(
            spec.argv, env=env, cwd=self.workspace, on_output=on_output,
            on_start=step.start, should_cancel=self.should_cancel,
            timeout=max(min(spec.timeout, self.deadline - time.monotonic()), 0),
            grace=settings.STEP_KILL_GRACE_SECONDS,
        )  # fmt: skip
        log.close()
        step.finish(_step_status(outcome), outcome.exit_code)
        return outcome

    def should_cancel(self) -> bool:
        """Whether someone asked to cancel; the database is asked at most once a second."""
        if not self.cancelled and time.monotonic() >= self.next_cancel_check:
            self.cancelled = self.run.cancel_requested()
            self.next_cancel_check = time.monotonic() + CANCEL_CHECK_SECONDS
        return self.cancelled

    def beat(self) -> None:
        """Tell the reaper this run's worker is alive, every RUN_HEARTBEAT_SECONDS."""
        if time.monotonic() >= self.next_beat:
            self.run.beat()
            self.next_beat = time.monotonic() + settings.RUN_HEARTBEAT_SECONDS


def _secret_values(names: list[str]) -> dict[str, str]:
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise RunFailed(f"secret {', '.join(missing)} is not set in hookrunner's environment")
    return {name: os.environ[name] for name in names}


def _workspace(definition: dict[str, Any], root: Path) -> str:
    if definition["workdir"]:
        if not Path(definition["workdir"]).is_dir():
            raise RunFailed(f"workdir {definition['workdir']} is not a directory")
        return definition["workdir"]
    workspace = root / "workspace"
    workspace.mkdir()
    return str(workspace)


def _step_specs(definition: dict[str, Any], run: Run) -> list[StepSpec]:
    specs = [
        StepSpec(step["name"], ["/bin/sh", "-c", step["run"]], step["timeout"], step["env"])
        for step in definition["steps"]
    ]
    if definition["checkout"]:
        url = settings.CHECKOUT_URL.format(repository=run.repository)
        checkout = StepSpec(
            "checkout", ["/bin/sh", "-c", CHECKOUT_SCRIPT], definition["timeout"],
            {"CHECKOUT_URL": url, "GIT_TERMINAL_PROMPT": "0"},
        )  # fmt: skip
        specs.insert(0, checkout)
    return specs


def _step_status(outcome: ProcessOutcome) -> str:
    if outcome.cancelled:
        return Step.Status.CANCELLED
    if outcome.timed_out:
        return Step.Status.TIMED_OUT
    return Step.Status.SUCCEEDED if outcome.exit_code == 0 else Step.Status.FAILED


def _ending(spec: StepSpec, outcome: ProcessOutcome) -> tuple[str, str] | None:
    """How the run ends after this step, or None if it goes on."""
    if outcome.cancelled:
        return Run.Status.CANCELLED, f"cancelled during step {spec.name}"
    if outcome.timed_out:
        return Run.Status.FAILED, f"step {spec.name} timed out"
    if outcome.exit_code:
        return Run.Status.FAILED, f"step {spec.name} failed with exit code {outcome.exit_code}"
    return None
