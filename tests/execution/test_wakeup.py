"""An idle worker is woken when work is queued (runner.runs.wakeup, runner.execution.wakeup):
on SQLite by a datagram to its socket after commit, on PostgreSQL by NOTIFY; its
fallback poll catches a wake-up that was lost.

The workers here poll every 60 s: a run they start within 15 s was started by a wake-up.
Each test first lets its worker execute one run, so that it is idle, waiting, when the
run it measures is queued."""

import socket
import subprocess
from collections.abc import Callable, Iterator

import pytest
from django.db import connection, transaction
from django.tasks.signals import task_enqueued
from django_tasks_db.backend import DatabaseBackend

from runner.execution.wakeup import SocketListener
from runner.runs import wakeup
from runner.runs.queue import queue_execution
from tests.conftest import SignedDelivery
from tests.worker_processes import (
    wait_for,
    wait_until_finished,
    wait_until_polling,
    worker_environment,
)

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_POLL_SECONDS = 60
# Far below SLOW_POLL_SECONDS, far above any wake-up: no timing is asserted.
DEADLINE_SECONDS = 15


@pytest.fixture
def idle_worker(pipelines, post_delivery, tmp_path, worker_processes):
    """Start a worker polling every `poll_seconds` and let it execute one run; the worker,
    then idle, and the function that queues the next run."""
    path = pipelines("""\
        ci:
          on: {push: null}
          steps: [{name: build, run: echo built}]
        """)

    def queue() -> int:
        (run_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
        return run_id

    def start(poll_seconds: float) -> tuple[subprocess.Popen, Callable[[], int]]:
        log = tmp_path / "worker.log"
        env = worker_environment(
            path, tmp_path / "workspaces", WORKER_POLL_SECONDS=poll_seconds, PYTHONUNBUFFERED=1
        )
        worker = worker_processes.start(env, log)
        wait_until_polling(worker, log)
        wait_until_finished([queue()], seconds=DEADLINE_SECONDS + poll_seconds)
        return worker, queue

    return start


@pytest.fixture
def sqlite_only() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's wake-ups")


@pytest.fixture
def no_wakeups() -> Iterator[None]:
    """This process queues work without waking anyone."""
    assert task_enqueued.disconnect(sender=DatabaseBackend, dispatch_uid=wakeup.CHANNEL)
    yield
    wakeup.connect()


def test_an_idle_worker_starts_a_queued_run_without_waiting_for_its_poll(idle_worker):
    _, queue = idle_worker(poll_seconds=SLOW_POLL_SECONDS)
    (run,) = wait_until_finished([queue()], seconds=DEADLINE_SECONDS)
    assert run.status == "succeeded"


def test_a_lost_wakeup_is_caught_by_the_poll(idle_worker, no_wakeups):
    _, queue = idle_worker(poll_seconds=1)
    (run,) = wait_until_finished([queue()], seconds=DEADLINE_SECONDS)
    assert run.status == "succeeded"


def test_a_worker_whose_socket_was_removed_is_found_by_its_poll_and_listens_again(
    sqlite_only, idle_worker, settings
):
    worker, queue = idle_worker(poll_seconds=1)
    socket_file = settings.DATA_DIR / "wake" / f"{socket.gethostname()}-{worker.pid}.sock"
    socket_file.unlink()
    (run,) = wait_until_finished([queue()], seconds=DEADLINE_SECONDS)
    assert run.status == "succeeded"
    wait_for(socket_file.exists, "the worker's socket bound again", DEADLINE_SECONDS)


@pytest.fixture
def listener() -> Iterator[SocketListener]:
    """A worker's socket, in this process."""
    listener = SocketListener()
    assert listener.listen()
    yield listener
    listener.close()


def test_a_committed_enqueue_wakes_the_workers_and_a_rolled_back_one_does_not(
    sqlite_only, listener
):
    with pytest.raises(RuntimeError), transaction.atomic():
        queue_execution("deploy")
        raise RuntimeError("rolled back")
    assert listener.drain() == set()
    with transaction.atomic():
        queue_execution("deploy")
        assert listener.drain() == set()  # not before the commit
    assert listener.drain() == {"deploy"}
