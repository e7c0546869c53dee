"""Two `manage.py worker` processes on one database: every run is executed exactly once.

On PostgreSQL the workers claim tasks with SELECT ... FOR UPDATE SKIP LOCKED, on SQLite
inside an exclusive write transaction; either way no run may start twice.
"""

import socket
import subprocess
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from django_tasks_db.models import DBTaskResult

from runner.models import Run
from tests.conftest import SignedDelivery
from tests.worker_processes import worker_environment

RUNS = 60
WORKERS = 2


@pytest.fixture
def executions(settings, tmp_path) -> Path:
    """A pipeline whose one step records who executed which run, in this folder.

    The step appends "run-id worker-pid" to `log`, then creates a file named after the
    run with noclobber (O_EXCL): a second execution of a run is logged, and fails."""
    folder = tmp_path / "executions"
    folder.mkdir()
    settings.WORKSPACES_DIR = tmp_path / "workspaces"
    settings.PIPELINES_FILE = tmp_path / "pipelines.yaml"
    settings.PIPELINES_FILE.write_text(
        textwrap.dedent(f"""\
            repositories:
              acme/webapp:
                pipelines:
                  once:
                    on: {{push: null}}
                    steps:
                      - name: record
                        run: |
                          echo "$HOOKRUNNER_RUN_ID $PPID" >> {folder}/log
                          set -C
                          echo "$PPID" > {folder}/run-$HOOKRUNNER_RUN_ID
                          sleep 0.05
            """)
    )
    return folder


@pytest.fixture
def workers(settings, tmp_path, worker_processes):
    """Start `manage.py worker` processes on the test database; all stopped after the test."""
    started: list[tuple[subprocess.Popen, Path]] = []
    env = worker_environment(settings.PIPELINES_FILE, settings.WORKSPACES_DIR, PYTHONUNBUFFERED=1)

    def start(count: int) -> list[subprocess.Popen]:
        for number in range(len(started), len(started) + count):
            log = tmp_path / f"worker-{number}.log"
            started.append((worker_processes.start(env, log=log), log))
        for process, log in started:
            wait_until_polling(process, log)
        return [process for process, _ in started]

    return start


def wait_until_polling(process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"worker exited with {process.returncode}:\n{log.read_text()}")
        if b"Starting worker" in log.read_bytes():
            return
        time.sleep(0.05)
    raise AssertionError(f"worker did not start polling within 30 s:\n{log.read_text()}")


def wait_until_finished(run_ids: list[int], seconds: float = 120) -> list[Run]:
    deadline = time.monotonic() + seconds
    unfinished = Run.objects.filter(pk__in=run_ids, status__in=["queued", "running"])
    while unfinished.exists():
        if time.monotonic() > deadline:
            left = Counter(unfinished.values_list("status", flat=True))
            raise AssertionError(f"runs not finished within {seconds} s: {dict(left)}")
        time.sleep(0.1)
    return list(Run.objects.filter(pk__in=run_ids).order_by("pk"))


@pytest.mark.django_db(transaction=True)
def test_two_workers_execute_every_run_exactly_once(executions, workers, post_delivery):
    processes = workers(WORKERS)
    run_ids = []
    for _ in range(RUNS):
        response = post_delivery(SignedDelivery.of_fixture("push__branch"))
        run_ids.extend(response.json()["runs"])
    assert len(run_ids) == RUNS

    runs = wait_until_finished(run_ids)

    outcomes = Counter((run.status, run.detail) for run in runs)
    assert outcomes == {("succeeded", "1 step succeeded"): RUNS}
    lines = (executions / "log").read_text().splitlines()
    executed = Counter(int(line.split()[0]) for line in lines)
    assert sorted(executed) == run_ids
    assert set(executed.values()) == {1}, "some run was executed more than once"
    host = socket.gethostname()
    worker_names = {f"{host}:{process.pid}" for process in processes}
    for run in runs:
        # The step's parent process is the worker that claimed the run.
        assert run.worker == f"{host}:{(executions / f'run-{run.pk}').read_text().strip()}"
        task = DBTaskResult.objects.get(id=run.task_id)
        assert (task.status, len(task.worker_ids)) == ("SUCCESSFUL", 1)
    shares = Counter(run.worker for run in runs)
    print(f"\nruns per worker: {dict(shares)}")
    assert set(shares) == worker_names, f"both workers should take part: {dict(shares)}"
