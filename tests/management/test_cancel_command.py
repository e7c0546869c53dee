"""`manage.py cancel`: queued runs end at once, running ones are stopped by their worker."""

import io
import os
import subprocess
import sys
from datetime import datetime

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from runner.models import Run
from tests.conftest import TEST_PIPELINES, SignedDelivery
from tests.worker_processes import (
    BASE_DIR,
    SANDBOX_PROCESSES,
    group_members,
    wait_for,
    worker_environment,
)


def cancel(*run_ids: int | str) -> tuple[str, str]:
    """call_command("cancel", ...); what it wrote to stdout and to stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command("cancel", *map(str, run_ids), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_queued_run_is_cancelled_at_once(queued):
    (run,) = queued()
    assert cancel(run.pk) == (f"run {run.pk}: cancelled\n", "")
    run.refresh_from_db()
    assert (run.status, run.detail) == ("cancelled", "cancelled before it started")
    assert run.finished_at is not None


@pytest.mark.django_db
def test_running_run_is_left_to_its_worker_to_stop(queued):
    (run,) = queued()
    Run.objects.filter(pk=run.pk).update(status="running", worker="builder:4242")
    out, _ = cancel(run.pk)
    assert (
        out == f"run {run.pk}: asked to stop; its worker (builder:4242) stops it within a second\n"
    )
    run.refresh_from_db()
    assert run.status == "running"
    assert run.cancel_requested_at is not None


@pytest.mark.django_db
def test_finished_run_is_left_as_it_ended(queued):
    (run,) = queued()
    Run.objects.filter(pk=run.pk).update(status="timed_out", detail="step build timed out")
    assert cancel(run.pk) == (f"run {run.pk}: already finished (timed out)\n", "")
    run.refresh_from_db()
    assert (run.status, run.detail) == ("timed_out", "step build timed out")
    assert run.cancel_requested_at is None


@pytest.mark.django_db
def test_unknown_run_is_an_error_that_does_not_stop_the_others(queued):
    first, last = queued(2)
    missing = last.pk + 1000
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=f"no such run: {missing}$"):
        call_command("cancel", str(first.pk), str(missing), str(last.pk), stdout=out, stderr=err)
    assert out.getvalue() == f"run {first.pk}: cancelled\nrun {last.pk}: cancelled\n"
    assert err.getvalue() == ""
    assert set(Run.objects.values_list("status", flat=True)) == {"cancelled"}


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_run_that_does_not_exist_says_so_once_and_exits_non_zero(tmp_path):
    env = worker_environment(TEST_PIPELINES, tmp_path / "workspaces")
    cancelled = subprocess.run(
        [sys.executable, "manage.py", "cancel", "99999"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (cancelled.returncode, cancelled.stdout) == (1, "")
    assert cancelled.stderr == "CommandError: no such run: 99999\n"


@pytest.mark.django_db
def test_run_ids_are_numbers():
    with pytest.raises(CommandError, match="invalid int value"):
        cancel("latest")


@pytest.mark.django_db
def test_at_least_one_run_id_is_needed():
    with pytest.raises(CommandError, match="RUN_ID"):
        cancel()


# End to end: a real worker runs the step, a real `manage.py cancel` stops it.


@pytest.fixture
def worker_env(pipelines, tmp_path) -> dict[str, str]:
    return worker_environment(tmp_path / "config" / "pipelines.yaml", tmp_path / "workspaces")


@pytest.fixture
def worker(worker_env, worker_processes):
    """A `manage.py worker` process against the test database, always stopped after."""
    return worker_processes.start(worker_env)


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.django_db(transaction=True)
def test_cancel_command_stops_a_running_step_and_its_whole_process_group(
    pipelines, post_delivery, worker, worker_env, worker_processes, tmp_path
):
    pipelines("""\
        ci:
          on: {push: null}
          steps:
            - name: hang
              run: sleep 300 & sleep 300
            - name: after
              run: echo never
        """)
    (run_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    pgid = worker_processes.wait_for_group(run_id, "hang")
    wait_for(
        lambda: len(group_members(pgid)) == 3 + SANDBOX_PROCESSES,
        "the shell and both sleeps running",
    )

    cancelled = subprocess.run(
        [sys.executable, "manage.py", "cancel", str(run_id)],
        cwd=BASE_DIR, env=worker_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (cancelled.returncode, cancelled.stderr) == (0, "")
    assert cancelled.stdout.startswith(f"run {run_id}: asked to stop; its worker (")
    requested_at = Run.objects.get(pk=run_id).cancel_requested_at
    assert requested_at is not None

    wait_for(lambda: not group_members(pgid), "every process of the group exited")
    exited_after = seconds_since(requested_at)
    wait_for(lambda: not group_exists(pgid), "the process group gone")
    gone_after = seconds_since(requested_at)
    print(
        f"\ncancel requested -> every process of the step's group exited: {exited_after:.2f} s; "
        f"-> group gone (ProcessLookupError, zombies reaped): {gone_after:.2f} s"
    )

    run = wait_for(lambda: Run.objects.exclude(status="running").filter(pk=run_id).first(), "run")
    assert (run.status, run.detail) == ("cancelled", "cancelled during step hang")
    assert [(step.name, step.status) for step in run.steps.all()] == [
        ("hang", "cancelled"),
        ("after", "skipped"),
    ]


def seconds_since(moment: datetime) -> float:
    return (timezone.now() - moment).total_seconds()
