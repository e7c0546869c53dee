"""Three `manage.py worker` processes share 300 runs queued by signed pushes: every run is
executed exactly once, the runs of a concurrency group never overlap, and a worker
SIGKILLed in the middle of a step leaves its run `error: worker lost` (marked by another
worker's reaper, never run again) while the other two finish the rest.

On PostgreSQL the workers claim tasks with SELECT ... FOR UPDATE SKIP LOCKED, on SQLite
inside an exclusive write transaction; .ci/run runs this on both.
"""

import itertools
import json
import signal
import socket
import subprocess
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.models import Run, Step
from tests.conftest import FIXTURES, SignedDelivery
from tests.worker_processes import (
    WorkerProcesses,
    record_executions,
    recorded_executions,
    wait_until_finished,
    wait_until_polling,
    worker_environment,
)

RUNS = 300
# Of every 50 pushes, 5 in a row start runs of the concurrency group (30 in all): queued
# side by side, they would be taken by all three workers at once if nothing held them back.
SERIAL_BURSTS = (50, range(20, 25))
WORKERS = 3
KILL_AFTER_FINISHED = 100
# A dead worker's run is reaped within about STALE + REAP seconds; a live one beats
# every HEARTBEAT seconds while its step runs, so STALE leaves it a wide margin.
WORKER_SETTINGS = {
    "RUN_HEARTBEAT_SECONDS": 0.2,
    "RUN_STALE_SECONDS": 3,
    "REAP_SECONDS": 0.5,
    "PYTHONUNBUFFERED": 1,
}


@pytest.fixture
def executions(pipelines, tmp_path) -> Path:
    """Two pipelines whose step records, in this folder, which worker executed which run
    (tests/worker_processes.py). `once` (pushes to main) just sleeps a little; `serial`
    (pushes to branch serial, in concurrency group `serial`) writes its start and end
    times into its run's file."""
    return record_executions(
        pipelines,
        tmp_path,
        """\
        once:
          on: {push: {branches: main}}
          sandbox: off  # $PPID is the worker only outside a sandbox
          steps:
            - name: record
              run: |
                echo "$HOOKRUNNER_RUN_ID $PPID" >> {folder}/log
                set -C
                : > {folder}/run-$HOOKRUNNER_RUN_ID
                sleep 0.05
        serial:
          on: {push: {branches: serial}}
          concurrency: serial
          sandbox: off
          steps:
            - name: record
              run: |
                echo "$HOOKRUNNER_RUN_ID $PPID" >> {folder}/log
                set -C
                date +%s.%N > {folder}/run-$HOOKRUNNER_RUN_ID
                sleep 0.2
                date +%s.%N >> {folder}/run-$HOOKRUNNER_RUN_ID
        """,
    )


def queue_runs(post_delivery) -> tuple[list[int], list[int]]:
    """Post RUNS signed pushes, those of SERIAL_BURSTS to branch serial; the ids of the
    runs of `once` and of `serial` they queued."""
    payload = json.loads((FIXTURES / "push__branch.json").read_text())
    serial_body = json.dumps({**payload, "ref": "refs/heads/serial"}).encode()
    once, serial = [], []
    for number in range(RUNS):
        delivery = SignedDelivery.of_fixture("push__branch")
        every, burst = SERIAL_BURSTS
        is_serial = number % every in burst
        if is_serial:
            delivery.body = serial_body
        (run_id,) = post_delivery(delivery).json()["runs"]
        (serial if is_serial else once).append(run_id)
    return once, serial


def start_workers(
    worker_processes: WorkerProcesses, env: dict[str, str], tmp_path: Path
) -> list[subprocess.Popen]:
    logs = [tmp_path / f"worker-{number}.log" for number in range(WORKERS)]
    processes = [worker_processes.start(env, log=log) for log in logs]
    for process, log in zip(processes, logs, strict=True):
        wait_until_polling(process, log)
    return processes


def wait_until_some_finished(count: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while Run.objects.filter(finished_at__isnull=False).count() < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} runs not finished within {seconds} s")
        time.sleep(0.1)


def kill_mid_step(workers: list[subprocess.Popen], seconds: float = 60) -> tuple[int, datetime]:
    """SIGKILL the worker of a run whose step is running; the run's id, and when.

    The worker is stopped (SIGSTOP) first, and killed only if its run is still running
    once what it had sent has reached the database; otherwise it goes on, and another
    running step is picked."""
    by_pid = {process.pid: process for process in workers}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        step = Step.objects.filter(
            status="running", pid__isnull=False, run__status="running"
        ).first()
        if step is None:
            time.sleep(0.01)
            continue
        worker = Run.objects.get(pk=step.run_id).worker
        victim = by_pid[int(worker.rsplit(":", 1)[1])]
        victim.send_signal(signal.SIGSTOP)
        time.sleep(0.3)
        if Run.objects.filter(
            pk=step.run_id, status="running", worker=worker, steps__status="running"
        ).exists():
            victim.kill()
            victim.wait()
            return step.run_id, timezone.now()
        victim.send_signal(signal.SIGCONT)
    raise AssertionError(f"no worker was caught running a step within {seconds} s")


def step_times(executions: Path, run_id: int) -> tuple[float, float] | None:
    """When a serial run's step started and ended, if it did both."""
    stamps = (executions / f"run-{run_id}").read_text().split()
    return (float(stamps[0]), float(stamps[1])) if len(stamps) == 2 else None


def assert_one_at_a_time(intervals: list[tuple[float, float]], what: str) -> None:
    intervals = sorted(intervals)
    for (_, ended), (started, _) in itertools.pairwise(intervals):
        assert started >= ended, f"{what} overlapped: one started {ended - started:.3f} s early"


@pytest.mark.django_db(transaction=True)
def test_three_workers_share_300_runs_and_one_killed_mid_step_loses_only_its_run(
    executions, post_delivery, settings, tmp_path, worker_processes
):
    env = worker_environment(settings.PIPELINES_FILE, settings.WORKSPACES_DIR, **WORKER_SETTINGS)
    once, serial = queue_runs(post_delivery)
    run_ids = sorted(once + serial)
    assert (len(once), len(serial), len(set(run_ids))) == (270, 30, RUNS)
    workers = start_workers(worker_processes, env, tmp_path)
    wait_until_some_finished(KILL_AFTER_FINISHED)
    killed_id, killed_at = kill_mid_step(workers)
    worker_processes.register_group(Step.objects.get(run_id=killed_id).pid)

    runs = {run.pk: run for run in wait_until_finished(run_ids, seconds=120)}

    host = socket.gethostname()
    killed = runs.pop(killed_id)
    victim = next(process for process in workers if f"{host}:{process.pid}" == killed.worker)
    survivors = {f"{host}:{process.pid}" for process in workers if process is not victim}
    assert killed.status == "error"
    assert killed.detail.startswith(f"worker lost: {killed.worker} stopped answering")
    assert list(killed.steps.values_list("status", flat=True)) == ["failed"]
    assert DBTaskResult.objects.get(id=killed.task_id).status == "FAILED"
    outcomes = Counter((run.status, run.detail) for run in runs.values())
    assert outcomes == {("succeeded", "1 step succeeded"): RUNS - 1}

    executed = recorded_executions(executions)
    assert set(executed) <= set(run_ids)
    assert executed[killed_id] <= 1, "the killed worker's run was executed again"
    assert {run_id: executed[run_id] for run_id in runs} == dict.fromkeys(runs, 1)
    pids = {int(line.split()[0]): line.split()[1] for line in (executions / "log").open()}
    for run in runs.values():
        # The step's parent process is the worker that claimed the run.
        assert run.worker == f"{host}:{pids[run.pk]}"
        assert DBTaskResult.objects.get(id=run.task_id).status == "SUCCESSFUL"

    # The killed worker did nothing more; the two others did everything after it.
    assert all(run.finished_at < killed_at for run in runs.values() if run.worker == killed.worker)
    later = Counter(run.worker for run in runs.values() if run.started_at > killed_at)
    print(f"\nkilled {killed.worker} in run {killed_id}; runs started after it: {dict(later)}")
    assert set(later) == survivors, f"both surviving workers should take part: {dict(later)}"

    in_group = [run for run in [*runs.values(), killed] if run.pk in serial]
    assert_one_at_a_time(
        [(run.started_at.timestamp(), run.finished_at.timestamp()) for run in in_group],
        "serial runs (in the database)",
    )
    # The killed worker's step went on without it, and was long over when it was reaped.
    times = [step_times(executions, run.pk) for run in in_group if executed[run.pk]]
    assert None not in times
    assert_one_at_a_time(times, "serial steps")
    by_start = sorted(in_group, key=lambda run: run.started_at)
    assert [run.pk for run in by_start] == sorted(serial), "serial runs did not go oldest first"
