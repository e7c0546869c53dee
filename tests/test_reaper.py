"""A run whose worker died is detected, marked `error: worker lost`, and what it left
running is killed."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.models import Run, Step
from runner.reaper import reap_stale_runs
from tests.conftest import SignedDelivery, alive

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def hanging_pipeline(settings, tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_text(
        textwrap.dedent("""\
            repositories:
              acme/webapp:
                pipelines:
                  ci:
                    on: {push: null}
                    steps:
                      - {name: hang, run: echo started; sleep 60}
                      - {name: after, run: echo never}
            """)
    )
    settings.PIPELINES_FILE = path
    settings.WORKSPACES_DIR = tmp_path / "workspaces"
    return path


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
    assert reap_stale_runs() == [run.pk]
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
    reap_stale_runs()
    assert leftover.wait(timeout=5) == -signal.SIGKILL


def database_url() -> str:
    """The URL of the database this test runs on, for a worker in another process."""
    database = connection.settings_dict
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    user = database["USER"]
    return f"postgres://{user}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_run_is_marked_lost_by_the_next_worker_and_its_step_killed(
    post_delivery, hanging_pipeline, tmp_path
):
    run = queued_run(post_delivery)
    env = worker_environment(hanging_pipeline, tmp_path)
    worker = start_worker(env)
    try:
        step = wait_for_running_step(run)
    finally:
        worker.kill()
        worker.wait()
    assert alive(step.pid), "the step outlives its killed worker until it is reaped"
    restarted = start_worker({**env, "RUN_STALE_SECONDS": "1", "REAP_SECONDS": "0.5"})
    try:
        run = wait_for_status(run, "error")
    finally:
        restarted.terminate()
        restarted.wait()
    assert run.detail.startswith(f"worker lost: {socket.gethostname()}:{worker.pid} ")
    assert not alive(step.pid)
    assert DBTaskResult.objects.get(id=run.task_id).status == "FAILED"
    wait_until_alone_in_the_database()


def worker_environment(pipelines_file: Path, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "PIPELINES_FILE": str(pipelines_file),
        "WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "RUN_HEARTBEAT_SECONDS": "0.2",
    }


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "worker", "--interval", "0.1"],
        cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def wait_for_status(run: Run, status: str, seconds: float = 30) -> Run:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status == status:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run.pk} is {run.status} ({run.detail}), never {status}")


def wait_until_alone_in_the_database() -> None:
    """PostgreSQL may keep a killed client's session a moment; dropping the test
    database after this test needs it gone."""
    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)


def wait_for_running_step(run: Run) -> Step:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        step = Step.objects.filter(run=run, status="running", pid__isnull=False).first()
        if step and step.chunks.exists():
            return step
        time.sleep(0.1)
    raise AssertionError("the worker never started the step")
