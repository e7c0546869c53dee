"""A real worker process told to stop (SIGTERM): its step finishes or is cancelled within
a grace period, its run is marked, and it exits leaving no process behind."""

import signal
import textwrap
import time

import pytest
from django.db import connection

from runner.models import Run, Step
from tests.conftest import SignedDelivery
from tests.worker_processes import group_members, wait_for_running_step, worker_environment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stoppable(post_delivery, settings, tmp_path, worker_processes):
    """Queue a run of `steps` and start a worker on it with the given stop grace.

    After the test the process group of every step those runs started is SIGKILLed, should
    a failed test have left it running, and the workers are stopped."""
    runs = []

    def start(steps: str, grace_seconds: float):
        path = tmp_path / "pipelines.yaml"
        path.write_text(
            "repositories:\n  acme/webapp:\n    pipelines:\n      ci:\n"
            "        on: {push: null}\n        steps:\n"
            + textwrap.indent(textwrap.dedent(steps), " " * 10)
        )
        settings.PIPELINES_FILE = path
        (run_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
        runs.append(Run.objects.get(pk=run_id))
        env = worker_environment(
            path,
            tmp_path / "workspaces",
            RUN_HEARTBEAT_SECONDS=0.2,
            WORKER_STOP_GRACE_SECONDS=grace_seconds,
            STEP_KILL_GRACE_SECONDS=1,
        )
        return worker_processes.start(env), runs[-1]

    yield start
    for pid in Step.objects.filter(run__in=runs, pid__isnull=False).values_list("pid", flat=True):
        worker_processes.register_group(pid)


def statuses(run: Run) -> list[tuple[str, str]]:
    return [(step.name, step.status) for step in Step.objects.filter(run=run)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_step_that_ends_within_the_grace_finishes_and_no_later_step_starts(stoppable, signum):
    worker, run = stoppable(
        """\
        - {name: short, run: echo started; sleep 2; echo finished}
        - {name: later, run: echo never}
        """,
        grace_seconds=30,
    )
    wait_for_running_step(run)
    worker.send_signal(signum)
    assert worker.wait(timeout=30) == 0
    run.refresh_from_db()
    assert (run.status, run.detail) == ("cancelled", "the worker was stopped before step later")
    assert statuses(run) == [("short", "succeeded"), ("later", "skipped")]


def test_step_that_outlasts_the_grace_is_cancelled_with_its_whole_group(stoppable):
    worker, run = stoppable(
        "- {name: hang, run: 'echo started; sleep 300 & sleep 300'}\n", grace_seconds=1
    )
    step = wait_for_running_step(run)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    run.refresh_from_db()
    assert (run.status, run.detail) == ("cancelled", "the worker was stopped during step hang")
    assert statuses(run) == [("hang", "cancelled")]
    assert group_members(step.pid) == []


def test_second_signal_cancels_the_step_without_waiting_for_the_grace(stoppable):
    worker, run = stoppable("- {name: hang, run: 'echo started; sleep 300'}\n", grace_seconds=600)
    step = wait_for_running_step(run)
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # two signals sent at once reach Python's handler as one
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert group_members(step.pid) == []


def test_idle_worker_exits_at_once(tmp_path, settings, worker_processes):
    # Its poll is far off: the signal itself ends its wait.
    env = worker_environment(
        settings.PIPELINES_FILE, tmp_path / "workspaces", RUN_HEARTBEAT_SECONDS=0.2,
        WORKER_POLL_SECONDS=60,
    )  # fmt: skip
    worker = worker_processes.start(env)
    time.sleep(2)
    its_socket = (settings.DATA_DIR / "wake").glob(f"*-{worker.pid}.sock")
    assert len(list(its_socket)) == (connection.vendor == "sqlite")  # PostgreSQL: LISTEN
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
    assert not list((settings.DATA_DIR / "wake").glob(f"*-{worker.pid}.sock"))
