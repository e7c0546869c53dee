"""Benchmark of one worker's runs per second on an empty database and with a long history.

One `manage.py worker --interval 0.1` process executes runs of one pipeline, one step
running `true`, all of acme/webapp at one sha. Runs are queued as the receiver queues
them (intake.receive of the stored `push`, tests/fixtures/github/push__branch.json, with
its own delivery id each, called in this process: the worker is measured, not the
receiver), and never all up front: a few at a time (`--in-flight`, 3 by default), the
next queued as soon as one has finished, so the worker always has one waiting and each
run's end costs what it costs with that history, not with a whole queue of runs.

1. Empty database: after 20 warm-up runs (then deleted), 500 runs.
2. History: 10,000 ended runs of the same repository, pipeline and sha (one delivery and
   one succeeded step each, finished over the past hours) are inserted with bulk_create,
   then 500 more runs, executed by the same worker.

Runs per second of a phase = its runs / (the last Run.finished_at - the first
Run.started_at). Also shown per run: the time from its claim to its end
(started_at..finished_at) and the gap from one run's end to the next one's claim (what
follows an end: outgoing rows, the concurrency group, settling needs; then polling and
claiming the next task). Target: ratio = rps with history / rps empty at least 0.5, with
SQLite and with PostgreSQL.

SQLite in a temporary DATA_DIR by default; DATABASE_URL in the environment selects
another database, which must hold no runs: the script refuses otherwise, and deletes
what it created at the end (deliveries, runs, steps, tasks, its worker's row). Run from
the project folder:

    .venv/bin/python bench/worker_history.py [--runs 500] [--history 10000] [--in-flight 3]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hr_bench_history \\
        .venv/bin/python bench/worker_history.py

The last line is one JSON object: rps_empty, rps_with_history, ratio, database, runs,
history, in_flight, and per run of each phase the gap between runs and the worker
process's own CPU time, in milliseconds.
"""

import argparse
import itertools
import json
import logging
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import met, output_log, print_load  # noqa: E402
from bench.served import PAYLOAD_FILE, configure_own_server, migrate, stop  # noqa: E402
from bench.trigger import cpu_seconds, start_worker  # noqa: E402

TARGET_RATIO = 0.5
WARMUP_RUNS = 20
HISTORY_BATCH = 1000
POLL_SECONDS = 0.005
PHASE_TIMEOUT_SECONDS = 900.0
PIPELINE = "build"


def write_pipelines(data_dir: Path) -> None:
    """One pipeline for pushes to main, one step running `true`. JSON, which YAML reads."""
    pipeline = {"on": {"push": {"branches": "main"}}, "steps": [{"name": "true", "run": "true"}]}
    path = data_dir / "worker-history-pipelines.yaml"
    path.write_text(
        json.dumps({"repositories": {"acme/webapp": {"pipelines": {PIPELINE: pipeline}}}})
    )
    os.environ["PIPELINES_FILE"] = str(path)


class Feeder:
    """Queues runs as the receiver does, each push with its own delivery id."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.payload = json.loads(PAYLOAD_FILE.read_text())
        self.count = itertools.count()

    def queue(self) -> int:
        from runner.config.github import event_from_payload
        from runner.config.store import current_pipelines
        from runner.receiver import intake

        delivery_id = f"{self.prefix}{next(self.count)}"
        event = event_from_payload("push", self.payload, delivery_id=delivery_id)
        (run_id,) = intake.receive(event, current_pipelines()).runs
        return run_id

    def run(self, runs: int, in_flight: int) -> list[int]:
        """Queue `runs` runs, at most `in_flight` unfinished at a time, the next as soon
        as one finishes; their ids, once all have finished."""
        from runner.models import Run

        deadline = time.monotonic() + PHASE_TIMEOUT_SECONDS
        ids: list[int] = []
        unfinished: set[int] = set()
        while len(ids) < runs or unfinished:
            while len(ids) < runs and len(unfinished) < in_flight:
                ids.append(self.queue())
                unfinished.add(ids[-1])
            finished = Run.objects.filter(pk__in=unfinished, finished_at__isnull=False)
            done = set(finished.values_list("pk", flat=True))
            if done:
                unfinished -= done
            else:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{len(unfinished)} runs not finished in time")
                time.sleep(POLL_SECONDS)
        return ids


def phase_figures(ids: list[int], wall: float) -> dict:
    from runner.models import Run

    runs = list(
        Run.objects.filter(pk__in=ids)
        .order_by("started_at")
        .only("status", "started_at", "finished_at")
    )
    seconds = (max(run.finished_at for run in runs) - runs[0].started_at).total_seconds()
    gaps = [
        (after.started_at - before.finished_at).total_seconds()
        for before, after in itertools.pairwise(runs)
    ]
    return {
        "runs": len(runs),
        "rps": len(runs) / seconds,
        "seconds": seconds,
        "wall": wall,
        "run_ms": statistics.mean(run.duration.total_seconds() for run in runs) * 1000,
        "gap_ms": statistics.mean(gaps) * 1000,
        "gap_p95_ms": statistics.quantiles(gaps, n=20)[-1] * 1000,
        "statuses": dict(Counter(run.status for run in runs)),
    }


def run_phase(feeder: Feeder, runs: int, in_flight: int, worker_pid: int) -> dict:
    print_load("before the phase")
    started, cpu = time.monotonic(), cpu_seconds(worker_pid)
    ids = feeder.run(runs, in_flight)
    figures = phase_figures(ids, time.monotonic() - started)
    figures["worker_cpu_ms"] = (cpu_seconds(worker_pid) - cpu) / runs * 1000
    return figures


def print_phase(name: str, figures: dict) -> None:
    print(f"{name}: {figures['runs']} runs in {figures['seconds']:.2f} s = "
          f"{figures['rps']:.1f} runs/s (wall {figures['wall']:.2f} s)")  # fmt: skip
    print(f"  per run: {figures['run_ms']:.1f} ms from claim to end, {figures['gap_ms']:.1f} ms "
          f"(p95 {figures['gap_p95_ms']:.1f}) from one run's end to the next one's claim; "
          f"statuses {figures['statuses']}")  # fmt: skip
    print(
        f"  the worker process used {figures['worker_cpu_ms']:.1f} ms of CPU per run "
        "(its own; not the steps', nor the database server's)",
        flush=True,
    )


def insert_history(count: int, prefix: str, model_run_id: int) -> float:
    """`count` ended runs like run `model_run_id`, each with its delivery and step; the
    seconds it took."""
    from django.utils import timezone

    from runner.models import Delivery, Run, Step
    from runner.models.db import write_transaction

    model = Run.objects.select_related("delivery").get(pk=model_run_id)
    delivery = model.delivery
    started = time.monotonic()
    now = timezone.now()
    for first in range(0, count, HISTORY_BATCH):
        numbers = range(first, min(first + HISTORY_BATCH, count))
        with write_transaction():
            deliveries = Delivery.objects.bulk_create(
                Delivery(
                    delivery_id=f"{prefix}history-{number}",
                    event=delivery.event,
                    repository=delivery.repository,
                    sender=delivery.sender,
                    ref=delivery.ref,
                    payload=delivery.payload,
                    status=Delivery.Status.ACCEPTED,
                )
                for number in numbers
            )
            runs = []
            for number, stored in zip(numbers, deliveries, strict=True):
                finished = now - timedelta(seconds=5 * (count - number))
                runs.append(
                    Run(
                        delivery=stored,
                        repository=model.repository,
                        pipeline=model.pipeline,
                        event=model.event,
                        sha=model.sha,
                        ref=model.ref,
                        definition=model.definition,
                        queue=model.queue,
                        status=Run.Status.SUCCEEDED,
                        detail="1 step succeeded",
                        started_at=finished - timedelta(seconds=1),
                        finished_at=finished,
                        worker="bench:0",
                        task_id=None,
                    )
                )
            Run.objects.bulk_create(runs)
            Step.objects.bulk_create(
                Step(
                    run=run,
                    index=0,
                    name="true",
                    status=Step.Status.SUCCEEDED,
                    exit_code=0,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                )
                for run in runs
            )
    return time.monotonic() - started


def delete_created(prefix: str, worker_pid: int | None = None) -> None:
    """The deliveries whose id starts with `prefix`, with their runs, steps, output and
    tasks; and the WorkerSeen row of the worker `worker_pid`."""
    from django_tasks_db.models import DBTaskResult

    from runner.models import Delivery, Run, WorkerSeen
    from runner.models.db import write_transaction

    deliveries = Delivery.objects.filter(delivery_id__startswith=prefix)
    task_ids = list(
        Run.objects.filter(delivery__in=deliveries, task_id__isnull=False).values_list(
            "task_id", flat=True
        )
    )
    with write_transaction():
        for first in range(0, len(task_ids), HISTORY_BATCH):
            DBTaskResult.objects.filter(id__in=task_ids[first : first + HISTORY_BATCH]).delete()
        deliveries.delete()
        if worker_pid is not None:
            WorkerSeen.objects.filter(name=f"{socket.gethostname()}:{worker_pid}").delete()


def database_name() -> str:
    from django.db import connection

    return "postgresql" if connection.vendor == "postgresql" else connection.vendor


def bench(arguments: argparse.Namespace, log: Path, given_database: bool) -> dict:
    from runner.models import Run

    if Run.objects.exists():
        raise SystemExit("the database holds runs already: this benchmark needs an empty one")
    prefix = f"bench-history-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}-"
    worker = start_worker(log)
    try:
        warmup = Feeder(prefix + "warmup-")
        warmup.run(WARMUP_RUNS, arguments.in_flight)
        delete_created(warmup.prefix)
        feeder = Feeder(prefix)
        print(f"{database_name()}, one worker, runs of one `true` step, at most "
              f"{arguments.in_flight} queued or running at a time", flush=True)  # fmt: skip
        empty = run_phase(feeder, arguments.runs, arguments.in_flight, worker.pid)
        print_phase("empty database", empty)
        model_run_id = Run.objects.filter(delivery__delivery_id__startswith=prefix).first().pk
        seconds = insert_history(arguments.history, prefix, model_run_id)
        ended = Run.objects.filter(sha=Run.objects.get(pk=model_run_id).sha).count()
        print(f"inserted {arguments.history} ended runs of the sha in {seconds:.1f} s "
              f"({ended} ended runs of it in all)", flush=True)  # fmt: skip
        history = run_phase(feeder, arguments.runs, arguments.in_flight, worker.pid)
        print_phase(f"with {ended} ended runs of the sha", history)
    finally:
        stop(worker)
        if given_database:  # a temporary SQLite file goes with its folder
            delete_created(prefix, worker.pid)
    ratio = history["rps"] / empty["rps"]
    print(f"ratio {ratio:.2f} ({met(ratio >= TARGET_RATIO)}: at least {TARGET_RATIO})")
    return {
        "rps_empty": round(empty["rps"], 1),
        "rps_with_history": round(history["rps"], 1),
        "ratio": round(ratio, 2),
        "database": database_name(),
        "runs": arguments.runs,
        "history": arguments.history,
        "in_flight": arguments.in_flight,
        "gap_ms_empty": round(empty["gap_ms"], 1),
        "gap_ms_with_history": round(history["gap_ms"], 1),
        "worker_cpu_ms_empty": round(empty["worker_cpu_ms"], 1),
        "worker_cpu_ms_with_history": round(history["worker_cpu_ms"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="runs per phase")
    parser.add_argument("--history", type=int, default=10_000, help="ended runs inserted")
    parser.add_argument("--in-flight", type=int, default=3, help="runs queued or running")
    arguments = parser.parse_args()
    given_database = bool(os.environ.get("DATABASE_URL"))
    log = output_log("worker-history")
    print(f"worker output: {log}", flush=True)
    print_load("before")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hookrunner-bench-history-") as data_dir:
        configure_own_server(Path(data_dir), runs=0)
        write_pipelines(Path(data_dir))
        migrate(log)
        import django

        django.setup()
        logging.getLogger("runner").setLevel(logging.WARNING)  # the worker's go to the log
        figures = bench(arguments, log, given_database)
    print(f"{time.monotonic() - started:.0f} s in all")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
