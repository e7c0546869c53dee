"""The database goes away while a step runs: the worker survives it, the step goes on, its
output waits in memory and is stored, with the run's end, once the database is back. Past
DATABASE_OUTAGE_SECONDS the step is stopped and the run ends as an error, recorded late.

On PostgreSQL the worker's connection is terminated (and new ones refused for a while);
on SQLite another process holds the write lock."""

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection

from runner.models import Run
from tests.conftest import (
    SignedDelivery,
    output_of,
    start_in_a_thread,
    wait_for_output,
)
from tests.worker_processes import worker_environment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run_id(pipelines, post_delivery, settings) -> int:
    settings.STEP_KILL_GRACE_SECONDS = 0.5
    # A heartbeat every poll: the worker writes, and so notices the outage, at once.
    settings.RUN_HEARTBEAT_SECONDS = 0.2
    pipelines("""\
        ci:
          on: {push: null}
          steps:
            - name: slow
              run: echo before; echo $$ > pid; sleep 3; echo after
        """)
    (run,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    return run


@contextmanager
def database_away() -> Iterator[None]:
    """Until the block ends, the worker cannot write: its PostgreSQL session is ended and
    new ones refused, or SQLite's write lock is held."""
    if connection.vendor == "postgresql":
        settings = connection.settings_dict
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (own,) = cursor.fetchone()
        # A database cannot refuse connections to itself: ask from the server's own.
        with psycopg.connect(
            host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
            dbname="postgres", autocommit=True,
        ) as admin:  # fmt: skip
            admin.execute(f'ALTER DATABASE "{settings["NAME"]}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> %s",
                [settings["NAME"], own],
            )
            try:
                yield
            finally:
                admin.execute(f'ALTER DATABASE "{settings["NAME"]}" ALLOW_CONNECTIONS true')
        return
    locker = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        locker.execute("COMMIT")
        locker.close()


@pytest.fixture
def short_lock_waits() -> Iterator[None]:
    """SQLite: a write waits 0.2 s for the lock, not 20, so the worker notices quickly."""
    if connection.vendor != "sqlite":
        yield
        return
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = options.get("timeout")
    options["timeout"] = 0.2
    yield
    if saved is not None:
        options["timeout"] = saved


def finished(execution: threading.Thread, run_id: int) -> Run:
    execution.join(timeout=60)
    assert not execution.is_alive()
    return Run.objects.get(pk=run_id)


def test_a_step_goes_on_through_a_short_outage_and_all_of_it_is_stored(run_id, short_lock_waits):
    execution = start_in_a_thread(run_id)
    wait_for_output(run_id, "before\n")
    with database_away():
        # The step prints its last line and ends while the worker cannot write.
        time.sleep(4)
    run = finished(execution, run_id)
    (step,) = run.steps.all()
    assert (run.status, run.detail) == ("succeeded", "1 step succeeded")
    assert (step.status, step.exit_code, output_of(step)) == ("succeeded", 0, "before\nafter\n")


def test_an_outage_past_the_limit_stops_the_step_and_is_recorded_once_it_ends(
    run_id, settings, short_lock_waits, tmp_path
):
    settings.DATABASE_OUTAGE_SECONDS = 1
    execution = start_in_a_thread(run_id)
    wait_for_output(run_id, "before\n")
    with database_away():
        time.sleep(2.5)
    run = finished(execution, run_id)
    (step,) = run.steps.all()
    assert run.status == "error"
    assert run.detail.startswith("database unavailable for ")
    assert run.detail.endswith("s, during step slow")
    assert (step.status, output_of(step)) == ("cancelled", "before\n")


def test_a_worker_process_outlives_the_outage_and_goes_on_to_the_next_run(
    pipelines, post_delivery, tmp_path, worker_processes
):
    path = pipelines("""\
        ci:
          on: {push: null}
          steps: [{name: slow, run: echo before; sleep 2; echo after}]
        """)
    log = tmp_path / "worker.log"
    env = worker_environment(
        path, tmp_path / "workspaces", RUN_HEARTBEAT_SECONDS=0.2, SQLITE_LOCK_TIMEOUT=0.2
    )
    worker = worker_processes.start(env, log)
    (first,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    wait_for_output(first, "before\n")
    with database_away():
        time.sleep(3)
    (second,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    deadline = time.monotonic() + 30
    while Run.objects.filter(pk__in=[first, second], status="succeeded").count() < 2:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    assert worker.poll() is None
    for run in Run.objects.filter(pk__in=[first, second]):
        assert [output_of(step) for step in run.steps.all()] == ["before\nafter\n"]
    said = log.read_text()
    assert "database unavailable" in said and "database back after" in said
