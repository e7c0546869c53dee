"""A run whose worker died is detected, marked `error: worker lost`, and what it left
running is killed."""

import signal
import socket
import subprocess
import textwrap
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.execution.upkeep import reap
from runner.models import Run, Step
from runner.runs import lifecycle
from runner.runs.reaper import reap_stale_runs
from tests.conftest import SignedDelivery, alive
from tests.worker_processes import (
    group_members,
    wait_for,
    wait_for_running_step,
    wait_for_status,
    worker_environment,
)

HANGING = """\
    repositories:
      acme/webapp:
        pipelines:
          ci:
            on: {push: null}
            steps:
              - {name: hang, run: echo started; sleep 60}
              - {name: after, run: echo never}
    """


@pytest.fixture
def hanging_pipeline(settings, tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_text(textwrap.dedent(HANGING))
    settings.PIPELINES_FILE = path
    settings.WORKSPACES_DIR = tmp_path / "workspaces"
    return path


@pytest.fixture
def unsandboxed_hanging_pipeline(hanging_pipeline):
    text = textwrap.dedent(HANGING).replace(
        "on: {push: null}", "on: {push: null}\n        sandbox: off"
    )
    hanging_pipeline.write_text(text)
    return hanging_pipeline


def queued_run(post_delivery) -> Run:
    (run_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    return Run.objects.get(pk=run_id)


def make_running(run: Run, silent_for: timedelta, worker: str = "elsewhere:1") -> None:
    Run.objects.filter(pk=run.pk).update(
        status="running", worker=worker, heartbeat_at=timezone.now() - silent_for
    )


@pytest.mark.django_db
def test_silent_run_is_marked_lost_with_its_workers_name(post_delivery, hanging_pipeline, settings):
    settings.RUN_STALE_SECONDS = 60
    run = queued_run(post_delivery)
    make_running(run, silent_for=timedelta(minutes=2))
    Step.objects.create(run=run, index=0, name="hang", status="running")
    Step.objects.create(run=run, index=1, name="after")
    assert [reaped.run_id for reaped in reap_stale_runs()] == [run.pk]
    run.refresh_from_db()
    assert run.status == "error"
    assert run.detail.startswith("worker lost: elsewhere:1 stopped answering")
    assert [(s.name, s.status) for s in run.steps.all()] == [
        ("hang", "failed"),
        ("after", "skipped"),
    ]


@pytest.mark.django_db
def test_run_with_a_recent_heartbeat_is_left_alone(post_delivery, hanging_pipeline, settings):
    settings.RUN_STALE_SECONDS = 60
    run = queued_run(post_delivery)
    make_running(run, silent_for=timedelta(seconds=5))
    assert reap_stale_runs() == []
    assert Run.objects.get(pk=run.pk).status == "running"


@pytest.mark.django_db
def test_queued_runs_are_not_reaped(post_delivery, hanging_pipeline, settings):
    settings.RUN_STALE_SECONDS = 0
    run = queued_run(post_delivery)
    assert reap_stale_runs() == []
    assert Run.objects.get(pk=run.pk).status == "queued"


@pytest.mark.django_db
def test_leftover_process_group_on_this_host_is_killed(post_delivery, hanging_pipeline):
    leftover = subprocess.Popen(["sleep", "60"], start_new_session=True)
    run = queued_run(post_delivery)
    make_running(run, silent_for=timedelta(hours=1), worker=f"{socket.gethostname()}:1")
    Step.objects.create(run=run, index=0, name="hang", status="running", pid=leftover.pid)
    reap()
    assert leftover.wait(timeout=5) == -signal.SIGKILL


@pytest.mark.django_db(transaction=True)
def test_a_sandboxed_step_dies_with_its_killed_worker_whose_run_the_next_marks_lost(
    post_delivery, hanging_pipeline, tmp_path, worker_processes
):
    run = queued_run(post_delivery)
    env = worker_environment(hanging_pipeline, tmp_path / "workspaces", RUN_HEARTBEAT_SECONDS=0.2)
    worker = worker_processes.start(env)
    step = wait_for_running_step(run)
    worker_processes.register_group(step.pid)
    worker.kill()
    worker.wait()
    # bwrap --die-with-parent: the sandbox ends with its worker, a moment later.
    wait_for(lambda: group_members(step.pid) == [], "the step's processes gone")
    restarted = worker_processes.start({**env, "RUN_STALE_SECONDS": "1", "REAP_SECONDS": "0.5"})
    run = wait_for_status(run, "error")
    worker_processes.stop(restarted)
    assert run.detail.startswith(f"worker lost: {socket.gethostname()}:{worker.pid} ")


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_run_is_marked_lost_by_the_next_worker_and_its_step_killed(
    post_delivery, unsandboxed_hanging_pipeline, tmp_path, worker_processes
):
    run = queued_run(post_delivery)
    env = worker_environment(
        unsandboxed_hanging_pipeline, tmp_path / "workspaces", RUN_HEARTBEAT_SECONDS=0.2
    )
    worker = worker_processes.start(env)
    step = wait_for_running_step(run)
    worker_processes.register_group(step.pid)
    worker.kill()
    worker.wait()
    assert alive(step.pid), "an unsandboxed step outlives its killed worker until reaped"
    restarted = worker_processes.start({**env, "RUN_STALE_SECONDS": "1", "REAP_SECONDS": "0.5"})
    run = wait_for_status(run, "error")
    worker_processes.stop(restarted)
    assert run.detail.startswith(f"worker lost: {socket.gethostname()}:{worker.pid} ")
    assert not alive(step.pid)
    assert DBTaskResult.objects.get(id=run.task_id).status == "FAILED"


@pytest.mark.django_db
def test_a_worker_that_wakes_after_being_reaped_does_not_overwrite_the_verdict(
    post_delivery, hanging_pipeline, settings
):
    settings.RUN_STALE_SECONDS = 60
    run = queued_run(post_delivery)
    make_running(run, silent_for=timedelta(minutes=2))
    run.refresh_from_db()
    assert [reaped.run_id for reaped in reap_stale_runs()] == [run.pk]
    assert lifecycle.finish(run, "succeeded", "1 step succeeded") is False
    assert (run.status, Run.objects.get(pk=run.pk).status) == ("error", "error")
