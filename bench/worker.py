"""Benchmark of the worker: step output throughput and memory, and how soon runs start.

1. Output: one run whose single step writes `--output-mb` MB (base64 text) is executed
   in this process, storing every byte as LogChunk rows (the per-step bound is raised
   for it). Figures: seconds, MB/s, chunk rows, and the peak RSS of this process.
2. Start latency: a real `manage.py worker` process (0.1 s polls, as `make run` starts
   it) is given `--runs` runs of a trivial step, queued one at a time; the figure is the
   time from the queueing commit to the run's started_at, p50 and p95.

Targets (DESIGN.md measured the raw pipe at 200 MB in 0.31 s, 25 MiB RSS, and a 0.1 s
poll at 48 ms p50 / 101 ms p95 to start): output bounded in memory whatever its size,
and start latency near the poll interval.

Run from the project folder, on SQLite in a temporary folder (or DATABASE_URL):

    .venv/bin/python bench/worker.py [--output-mb 200] [--runs 50]

The last line is one JSON object: output_mb, output_seconds, output_mb_per_s,
chunk_rows, peak_rss_mib, start_p50_ms, start_p95_ms.
"""

import argparse
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = """\
repositories:
  acme/webapp:
    pipelines:
      loud:
        on: {{push: {{branches: loud}}}}
        steps: [{{name: write, run: 'head -c {raw_bytes} /dev/zero | base64 -w 0'}}]
      quick:
        on: {{push: {{branches: quick}}}}
        steps: [{{name: nothing, run: 'true'}}]
"""


def configure(data_dir: Path, output_mb: int) -> None:
    # base64 turns 3 bytes into 4 characters.
    raw_bytes = output_mb * 1_000_000 * 3 // 4
    pipelines = data_dir / "pipelines.yaml"
    pipelines.write_text(PIPELINES.format(raw_bytes=raw_bytes))
    os.environ.update(
        {
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": os.environ.get("DATABASE_URL")
            or f"sqlite:///{data_dir / 'hookrunner.sqlite3'}",
            "WEBHOOK_SECRET": secrets.token_urlsafe(16),
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
            "PIPELINES_FILE": str(pipelines),
            "STEP_OUTPUT_LIMIT": str(output_mb * 1_000_000 + 1_000_000),
            "DJANGO_SETTINGS_MODULE": "runner.settings",
            "LOG_LEVEL": "WARNING",
        }
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, check=True
    )
    import django

    django.setup()


def queue_run(branch: str):
    """Store a push to `branch` and queue its run, as the receiver does; the Run."""
    from runner import intake
    from runner.github import event_from_payload
    from runner.models import Run
    from runner.pipelines_store import current_pipelines

    payload = json.loads((ROOT / "tests/fixtures/github/push__branch.json").read_text())
    payload["ref"] = f"refs/heads/{branch}"
    event = event_from_payload("push", payload, delivery_id=secrets.token_hex(8))
    (run_id,) = intake.receive(event, current_pipelines()).runs
    return Run.objects.get(pk=run_id)


def bench_output(output_mb: int) -> dict:
    from runner import worker
    from runner.models import LogChunk

    run = queue_run("loud")
    started = time.perf_counter()
    worker.execute(run)
    seconds = time.perf_counter() - started
    run.refresh_from_db()
    step = run.steps.get()
    if run.status != "succeeded" or step.dropped_bytes:
        raise SystemExit(f"output run ended {run.status}: {run.detail}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "output_mb": round(step.output_bytes / 1_000_000, 1),
        "output_seconds": round(seconds, 2),
        "output_mb_per_s": round(step.output_bytes / 1_000_000 / seconds, 1),
        "chunk_rows": LogChunk.objects.filter(step=step).count(),
        "peak_rss_mib": round(peak_mib, 1),
    }
    print(
        f"output: {figures['output_mb']} MB stored in {figures['output_seconds']} s "
        f"({figures['output_mb_per_s']} MB/s) as {figures['chunk_rows']} rows; "
        f"peak RSS of this process {figures['peak_rss_mib']} MiB"
    )
    return figures


def bench_start(runs: int) -> dict:
    from django.db import close_old_connections

    from runner.models import Run

    worker = subprocess.Popen(
        [sys.executable, "manage.py", "worker", "--interval", "0.1"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    latencies = []
    try:
        time.sleep(2)
        for _ in range(runs):
            # Arrive at a random point of the worker's idle poll, as deliveries do.
            time.sleep(random.uniform(0.1, 0.3))  # noqa: S311
            run = queue_run("quick")
            while (run := Run.objects.get(pk=run.pk)).started_at is None:
                time.sleep(0.005)
            latencies.append((run.started_at - run.created_at).total_seconds() * 1000)
            close_old_connections()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    p50 = statistics.median(latencies)
    p95 = sorted(latencies)[max(int(len(latencies) * 0.95) - 1, 0)]
    print(f"start: {runs} runs, queued to started p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    return {"start_p50_ms": round(p50, 1), "start_p95_ms": round(p95, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=50)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hookrunner-bench-worker-") as data_dir:
        configure(Path(data_dir), arguments.output_mb)
        figures = bench_output(arguments.output_mb)
        figures.update(bench_start(arguments.runs))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
