"""An idle worker is woken when work is queued (runner.runs.wakeup, runner.execution.wakeup):
on SQLite by a datagram to its socket after commit, on PostgreSQL by NOTIFY; its
fallback poll catches a wake-up that was lost.

The workers here poll every 60 s: a run they start within 15 s was started by a wake-up.
Each test first lets its workers execute one run each, so that they are idle, waiting,
when the runs it measures are queued."""

import json
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.tasks.signals import task_enqueued
from django_tasks_db.backend import DatabaseBackend

from runner.execution.wakeup import SocketListener
from runner.models import Run
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
def start_worker(tmp_path, worker_processes):
    """Start a worker on the pipelines file at `path`, polling every `poll_seconds`; the
    worker, once it has started."""

    def start(path: Path, poll_seconds: float) -> subprocess.Popen:
        log = tmp_path / f"worker-{len(worker_processes.started)}.log"
        env = worker_environment(
            path, tmp_path / "workspaces", WORKER_POLL_SECONDS=poll_seconds, PYTHONUNBUFFERED=1
        )
        worker = worker_processes.start(env, log)
        wait_until_polling(worker, log)
        return worker

    return start


def queue_push(post_delivery) -> list[int]:
    """Deliver a push to acme/webapp; the ids of the runs it queued."""
    return post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]


@pytest.fixture
def idle_worker(pipelines, post_delivery, start_worker):
    """Start a worker polling every `poll_seconds` and let it execute one run; the worker,
    then idle, and the function that queues the next run."""
    path = pipelines("""\
        ci:
          on: {push: null}
          steps: [{name: build, run: echo built}]
        """)

    def queue() -> int:
        (run_id,) = queue_push(post_delivery)
        return run_id

    def start(poll_seconds: float) -> tuple[subprocess.Popen, Callable[[], int]]:
        worker = start_worker(path, poll_seconds)
        wait_until_finished([queue()], seconds=DEADLINE_SECONDS + poll_seconds)
        return worker, queue

    return start


@pytest.fixture
def idle_workers(pipelines, post_delivery, start_worker, tmp_path):
    """Start `count` workers polling every SLOW_POLL_SECONDS, on `count` pipelines that
    every push runs, whose one step waits until the file `gate` exists; and let each
    worker execute one run (all held at the gate until each worker has one), so that
    all are idle. The workers, the gate (closed), and the function that queues `count`
    runs. After the test the gate opens: no held step keeps its worker from stopping."""
    gate = tmp_path / "gate"

    def start(count: int) -> tuple[list[subprocess.Popen], Path, Callable[[], list[int]]]:
        held = {
            "on": {"push": None},
            "sandbox": "off",  # a sandbox's /tmp is its own: the step would not see the gate
            "steps": [{"name": "wait", "run": f"until [ -e {gate} ]; do sleep 0.1; done"}],
        }
        path = pipelines("".join(f"held-{number}: {json.dumps(held)}\n" for number in range(count)))
        workers = [start_worker(path, SLOW_POLL_SECONDS) for _ in range(count)]
        first = queue_push(post_delivery)
        wait_until_running(first, seconds=DEADLINE_SECONDS + SLOW_POLL_SECONDS)
        gate.touch()
        wait_until_finished(first, seconds=DEADLINE_SECONDS)
        gate.unlink()
        return workers, gate, lambda: queue_push(post_delivery)

    yield start
    gate.touch()


def wait_until_running(run_ids: list[int], seconds: float) -> list[Run]:
    """The runs, once a worker has started every one."""

    def all_running() -> list[Run] | None:
        runs = list(Run.objects.filter(pk__in=run_ids, status="running").order_by("pk"))
        return runs if len(runs) == len(run_ids) else None

    return wait_for(all_running, f"{len(run_ids)} runs all started", seconds)


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


def test_every_idle_worker_is_woken_by_one_commit_that_queues_work_for_all(idle_workers):
    workers, gate, queue = idle_workers(count=3)
    # A worker holds its run until the gate opens: all three run at once only if each
    # of the three workers was woken.
    runs = wait_until_running(queue(), seconds=DEADLINE_SECONDS)
    host = socket.gethostname()
    assert {run.worker for run in runs} == {f"{host}:{worker.pid}" for worker in workers}
    gate.touch()
    finished = wait_until_finished([run.pk for run in runs], seconds=DEADLINE_SECONDS)
    assert [run.status for run in finished] == ["succeeded"] * 3


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


def test_the_socket_of_a_worker_killed_without_removing_it_is_removed_by_the_next_wakeup(
    sqlite_only, listener
):
    dead = wakeup.sockets_dir() / "gone-1.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as killed:
        killed.bind(str(dead))  # and closed without unlinking it, as by SIGKILL
    with transaction.atomic():
        queue_execution("deploy")
    assert not dead.exists()
    assert listener.drain() == {"deploy"}
