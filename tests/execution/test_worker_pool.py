"""Two `manage.py worker` processes on one database: every run is executed exactly once.

On PostgreSQL the workers claim tasks with SELECT ... FOR UPDATE SKIP LOCKED, on SQLite
inside an exclusive write transaction; either way no run may start twice.
"""

import socket
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from django_tasks_db.models import DBTaskResult

from tests.conftest import SignedDelivery
from tests.worker_processes import (
    record_executions,
    recorded_executions,
    wait_until_finished,
    wait_until_polling,
    worker_environment,
)

RUNS = 60
WORKERS = 2


@pytest.fixture
def executions(pipelines, tmp_path) -> Path:
    """A pipeline whose one step records who executed which run in this folder, and
    writes its worker's pid into the run's file (tests/worker_processes.py)."""
    return record_executions(
        pipelines,
        tmp_path,
        """\
        once:
          on: {push: null}
          sandbox: off  # $PPID is the worker only outside a sandbox
          steps:
            - name: record
              run: |
                echo "$HOOKRUNNER_RUN_ID $PPID" >> {folder}/log
                set -C
                echo "$PPID" > {folder}/run-$HOOKRUNNER_RUN_ID
                sleep 0.05
        """,
    )


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
    executed = recorded_executions(executions)
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
