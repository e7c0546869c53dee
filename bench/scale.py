"""Benchmark of runs per second with 1, 2 and 4 workers sharing one PostgreSQL database.

The script creates the database hookrunner_bench_scale (through psycopg connected to the
server's `postgres` database; a leftover one is dropped first), migrates it, and drops it
at the end. Its pipelines file has one pipeline of one step that appends its run's id to
a file, then runs `sleep 0.2`. For 1, 2 and 4 workers in turn: 200 runs are queued as
the receiver queues them (intake.receive of a stored `push`, called in this process: no
receiver runs), then N `manage.py worker --interval 0.1` processes are started at once,
and the figure is 200 / the time from starting them to the last Run.finished_at.
Also shown: the same from the first run started (without the workers' start), how long
each worker took to claim its first run, the runs each worker took, and per run the
time around the step's 0.2 s and a worker's gap from finishing one run to starting the
next. Duplicates: runs whose step ran more than once (the file lists them twice). Between
rounds the workers are stopped and every delivery (with its runs) and task is deleted.

Targets on a 2-core machine: 2 workers at least 1.7x and 4 workers at least 3x the runs
per second of one, no duplicates. Run from the project folder:

    .venv/bin/python bench/scale.py [--runs 200] [--server postgres://postgres@127.0.0.1:5432]

The last line is one JSON object: rps_1, rps_2, rps_4, duplicates.
"""

import argparse
import itertools
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import met, output_log, print_load  # noqa: E402
from bench.output import queue_run  # noqa: E402
from bench.served import configure_own_server, migrate, stop  # noqa: E402
from bench.trigger import start_worker  # noqa: E402

DATABASE = "hookrunner_bench_scale"
WORKER_COUNTS = (1, 2, 4)
STEP_SECONDS = 0.2
TARGETS = {2: 1.7, 4: 3.0}  # speed-up over one worker
RUN_TIMEOUT_SECONDS = 600.0


def recreate_database(server: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE}")


def drop_database(server: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def write_pipelines(data_dir: Path, executions: Path) -> None:
    """One pipeline for pushes to main: its step records its run, then sleeps. The file
    it records in is outside DATA_DIR (which steps never see), in a folder it may write."""
    run = f'echo "$HOOKRUNNER_RUN_ID" >> "{executions}"; sleep {STEP_SECONDS}'
    pipeline = {
        "on": {"push": {"branches": "main"}},
        "sandbox": {"writable": [str(executions.parent)]},
        "steps": [{"name": "sleep", "run": run}],
    }
    path = data_dir / "scale-pipelines.yaml"
    path.write_text(
        json.dumps({"repositories": {"acme/webapp": {"pipelines": {"main": pipeline}}}})
    )
    os.environ["PIPELINES_FILE"] = str(path)


def wait_until_finished(run_ids: list[int]) -> None:
    from runner.models import Run

    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    unfinished = Run.objects.filter(pk__in=run_ids, finished_at__isnull=True)
    while unfinished.exists():
        if time.monotonic() > deadline:
            raise SystemExit(
                f"{unfinished.count()} runs not finished in {RUN_TIMEOUT_SECONDS:.0f} s"
            )
        time.sleep(0.05)


def clear_history() -> None:
    """Delete every delivery (with its runs, steps and output) and every task."""
    from django_tasks_db.models import DBTaskResult

    from runner.models import Delivery

    Delivery.objects.all().delete()
    DBTaskResult.objects.all().delete()


def duplicates(executions: Path, run_ids: list[int]) -> tuple[int, int]:
    """Runs whose step ran more than once, and runs whose step never ran."""
    counts = Counter(int(line) for line in executions.read_text().split())
    return sum(1 for count in counts.values() if count > 1), len(set(run_ids) - set(counts))


def worker_figures(runs) -> tuple[dict[str, int], list[float], list[float]]:
    """Runs per worker, each worker's first claim (epoch seconds), and its gaps between
    finishing one run and starting the next."""
    by_worker = defaultdict(list)
    for run in runs:
        by_worker[run.worker].append(run)
    shares, first_claims, gaps = {}, [], []
    for worker, own in by_worker.items():
        own.sort(key=lambda run: run.started_at)
        shares[worker] = len(own)
        first_claims.append(own[0].started_at.timestamp())
        gaps += [
            (after.started_at - before.finished_at).total_seconds()
            for before, after in itertools.pairwise(own)
        ]
    return shares, first_claims, gaps


def bench_round(workers: int, runs: int, data_dir: Path, records: Path, log: Path) -> dict:
    """Queue `runs` runs, execute them with `workers` fresh workers, whose steps record
    their runs in `records`; the round's figures."""
    from runner.models import Run

    executions = records / f"executions-{workers}"
    executions.touch()
    write_pipelines(data_dir, executions)
    queued_at = time.monotonic()
    run_ids = [queue_run("main") for _ in range(runs)]
    queue_seconds = time.monotonic() - queued_at
    started_at = time.time()
    processes = [start_worker(log) for _ in range(workers)]
    try:
        wait_until_finished(run_ids)
    finally:
        for process in processes:
            stop(process)
    done = list(Run.objects.filter(pk__in=run_ids))
    statuses = Counter(run.status for run in done)
    last = max(run.finished_at for run in done).timestamp()
    first = min(run.started_at for run in done).timestamp()
    shares, first_claims, gaps = worker_figures(done)
    around_step = [
        (run.finished_at - run.started_at).total_seconds() - STEP_SECONDS for run in done
    ]
    twice, never = duplicates(executions, run_ids)
    figures = {
        "workers": workers,
        "rps": runs / (last - started_at),
        "rps_steady": runs / (last - first),
        "seconds": last - started_at,
        "first_claims": [claim - started_at for claim in sorted(first_claims)],
        "around_step_ms": statistics.mean(around_step) * 1000,
        "gap_ms": statistics.mean(gaps) * 1000 if gaps else 0.0,
        "shares": sorted(shares.values(), reverse=True),
        "statuses": dict(statuses),
        "duplicates": twice,
        "never": never,
        "queue_seconds": queue_seconds,
    }
    clear_history()
    return figures


def print_round(figures: dict, base_rps: float) -> None:
    workers = figures["workers"]
    speedup = figures["rps"] / base_rps
    target = TARGETS.get(workers)
    verdict = ""
    if target:
        verdict = f" ({met(speedup >= target)}: at least {target}x)"
    claims = ", ".join(f"{seconds:.2f}" for seconds in figures["first_claims"])
    print(f"{workers} worker{'s' if workers > 1 else ''}: {figures['rps']:.2f} runs/s, "
          f"{speedup:.2f}x one worker{verdict}")  # fmt: skip
    print(f"  {figures['seconds']:.2f} s from starting the workers to the last run finished")
    print(f"  {figures['rps_steady']:.2f} runs/s from the first run started (first claims "
          f"{claims} s after starting)")  # fmt: skip
    print(f"  per run: {figures['around_step_ms']:.1f} ms around the {STEP_SECONDS:.1f} s step, "
          f"{figures['gap_ms']:.1f} ms between a worker's runs")  # fmt: skip
    print(f"  runs per worker {figures['shares']}, statuses {figures['statuses']}, "
          f"duplicates {figures['duplicates']}, never run {figures['never']} "
          f"(queued in {figures['queue_seconds']:.1f} s)")  # fmt: skip
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--server",
        default="postgres://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL without a database name",
    )
    arguments = parser.parse_args()
    server = arguments.server.rstrip("/")
    log = output_log("scale")
    print(f"worker output: {log}", flush=True)
    print_load("before")
    recreate_database(server)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="hookrunner-bench-scale-") as data_dir,
            tempfile.TemporaryDirectory(prefix="hookrunner-bench-records-") as records,
        ):
            data_dir, records = Path(data_dir), Path(records)
            os.environ["DATABASE_URL"] = f"{server}/{DATABASE}"
            configure_own_server(data_dir, runs=0)
            write_pipelines(data_dir, records / "executions")
            migrate(log)
            import django

            django.setup()
            logging.getLogger("runner").setLevel(logging.WARNING)
            print(f"{arguments.runs} runs of one `sleep {STEP_SECONDS}` step on PostgreSQL")
            rounds = []
            for count in WORKER_COUNTS:
                rounds.append(bench_round(count, arguments.runs, data_dir, records, log))
                print_round(rounds[-1], rounds[0]["rps"])
    finally:
        drop_database(server)  # WITH (FORCE): this process's own session goes too
    result = {f"rps_{figures['workers']}": round(figures["rps"], 2) for figures in rounds}
    result["duplicates"] = sum(figures["duplicates"] for figures in rounds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
