"""Benchmark of how soon a delivery's run starts, and of what an idle worker costs.

1. Trigger latency: hookrunner runs as deployed, a gunicorn receiver
   (deploy/gunicorn.conf.py, started by bench/receiver.py's helpers) and a `manage.py
   worker` process, woken by the receiver when a run is queued (docs/scaling.md) and
   polling every WORKER_POLL_SECONDS otherwise, on a fresh SQLite database in a temporary
   DATA_DIR. Its pipelines file has one pipeline whose first step writes `date +%s.%N`
   into a file named after the run (`$OUT/$HOOKRUNNER_RUN_ID`, OUT set in the pipeline's
   env). Signed `push` deliveries are posted one at a time, each at a random moment of the
   worker's idle wait and only once the previous run has finished; the figure is the time
   from just before the POST to the timestamp the step wrote (the file is looked at every
   millisecond), p50 and p95. The step runs in its sandbox, as every step does by default.
2. Sandbox overhead: every other delivery is a push to branch `bare`, whose pipeline is
   the same with `sandbox: off`. The time from the worker's claim of a run
   (Run.started_at) to its step running holds no wait for the worker; the difference of
   its p50 between the sandboxed and the unsandboxed runs is what the sandbox adds to a
   step's start.
3. Idle worker: with nothing queued, the worker process's utime+stime from
   /proc/PID/stat over `--idle-seconds`, in percent of one core.

Targets with SQLite on a 2-core machine: p50 at most 20 ms, p95 at most 50 ms, the sandbox
adding under 10 ms at p50, an idle worker at most 1% of a core. (Polling every 0.1 s gave
48 / 101 ms at 2.4%, every 0.05 s 31 / 56 ms at 5%: only a wake-up meets both.) Run from
the project folder:

    .venv/bin/python bench/trigger.py [--deliveries 50] [--idle-seconds 10]

The last line is one JSON object: p50_ms, p95_ms, sandbox_overhead_ms, idle_cpu_pct.
"""

import argparse
import json
import math
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import met, output_log, print_load  # noqa: E402
from bench.served import (  # noqa: E402
    PAYLOAD_FILE,
    Target,
    configure_own_server,
    migrate,
    start_gunicorn,
    stop,
    wait_until_listening,
)
from runner.config.github import sign  # noqa: E402

WARMUP_DELIVERIES = 3
POLL_SECONDS = 0.001
RUN_TIMEOUT_SECONDS = 30.0
STAGES = {
    "answered": "the receiver's 202 is read (delivery, run and task committed)",
    "claimed": "Run.started_at: the worker took the task and claimed the run",
    "spawned": "Step.started_at: the step's process was started",
    "running": "the step's `date` ran",
}
PIPELINES = """\
repositories:
  acme/webapp:
    pipelines:
      stamp:
        on: {{push: {{branches: main}}}}
        env: {{OUT: '{out}'}}
        sandbox: {{writable: ['{out}']}}
        steps:
          - {{name: stamp, run: 'date +%s.%N > "$OUT/$HOOKRUNNER_RUN_ID"'}}
      bare:
        on: {{push: {{branches: bare}}}}
        env: {{OUT: '{out}'}}
        sandbox: off
        steps:
          - {{name: stamp, run: 'date +%s.%N > "$OUT/$HOOKRUNNER_RUN_ID"'}}
"""


def write_pipelines(data_dir: Path, out: Path) -> None:
    path = data_dir / "trigger-pipelines.yaml"
    path.write_text(PIPELINES.format(out=out))
    os.environ["PIPELINES_FILE"] = str(path)


def start_worker(log: Path) -> subprocess.Popen:
    """A `manage.py worker` with the default settings, as `manage.py serve` starts it."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "manage.py", "worker"],
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip


def post_delivery(target: Target, body: bytes) -> int:
    """POST one signed push with a fresh delivery id; the id of the run it queued."""
    request = urllib.request.Request(
        f"http://{target.host}:{target.port}{target.path}",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": secrets.token_hex(16),
            "X-Hub-Signature-256": sign(target.secret, body),
        },
    )
    with urllib.request.urlopen(request, timeout=RUN_TIMEOUT_SECONDS) as response:
        (run_id,) = json.load(response)["runs"]
    return run_id


def wait_for_stamp(path: Path) -> float:
    """The timestamp the step wrote into `path`, once it is there in full."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if os.stat(path).st_size:
                text = path.read_text()
                if text.endswith("\n"):  # `date` writes its line at once, newline last
                    return float(text)
        except FileNotFoundError:
            pass
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"no step wrote {path} within {RUN_TIMEOUT_SECONDS:.0f} s")


def wait_until_finished(run_id: int, timeout: float = RUN_TIMEOUT_SECONDS):
    """The finished Run, with its steps fetched; exits unless it succeeded."""
    from runner.models import Run

    deadline = time.monotonic() + timeout
    while not Run.objects.filter(pk=run_id, finished_at__isnull=False).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"run {run_id} did not finish within {timeout:.0f} s")
        time.sleep(0.05)
    run = Run.objects.prefetch_related("steps").get(pk=run_id)
    if run.status != Run.Status.SUCCEEDED:
        raise SystemExit(f"run {run_id} ended {run.status}: {run.detail}")
    return run


def trigger_once(target: Target, body: bytes, out: Path) -> dict[str, float]:
    """Milliseconds from the POST to each stage; "running" is the figure measured."""
    # Deliveries come at any moment of the worker's idle wait.
    time.sleep(random.uniform(0.1, 0.3))  # noqa: S311
    posted_at = time.time()
    run_id = post_delivery(target, body)
    answered_at = time.time()
    running_at = wait_for_stamp(out / str(run_id))
    run = wait_until_finished(run_id)
    stages = {
        "answered": answered_at,
        "claimed": run.started_at.timestamp(),
        "spawned": run.steps.all()[0].started_at.timestamp(),
        "running": running_at,
    }
    return {stage: (at - posted_at) * 1000 for stage, at in stages.items()}


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)), 1) - 1]


def print_stages(timings: list[dict[str, float]]) -> None:
    """Where the time goes: the p50 of each stage, and of the time since the one before."""
    print("  stages, p50 ms after the POST (+ p50 ms since the stage before):")
    previous = [0.0] * len(timings)
    for stage, meaning in STAGES.items():
        reached = [timing[stage] for timing in timings]
        since = percentile([at - before for at, before in zip(reached, previous, strict=True)], 0.5)
        print(f"    {stage:<9}{percentile(reached, 0.5):7.1f} ({since:+6.1f})  {meaning}")
        previous = reached
    sys.stdout.flush()


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid`, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; utime is field 14
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu_pct(pid: int, seconds: float) -> float:
    used_before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    used, elapsed = cpu_seconds(pid) - used_before, time.monotonic() - started
    return used / elapsed * 100


def sandbox_overhead_ms(sandboxed: list[dict], bare: list[dict]) -> float:
    """What the sandbox adds to a step's start: p50 of claim to running, with less without."""

    def start_ms(timings: list[dict]) -> float:
        return percentile([timing["running"] - timing["claimed"] for timing in timings], 0.5)

    with_sandbox, without = start_ms(sandboxed), start_ms(bare)
    overhead = with_sandbox - without
    print(f"sandbox: claim to step running, p50 {with_sandbox:.1f} ms sandboxed, {without:.1f} ms "
          f"with sandbox: off: {overhead:+.1f} ms ({met(overhead < 10)}: under 10 ms)")  # fmt: skip
    return overhead


def bench(target: Target, out: Path, deliveries: int, idle_seconds: float, log: Path) -> dict:
    body = PAYLOAD_FILE.read_bytes()
    bare_body = body.replace(b'"refs/heads/main"', b'"refs/heads/bare"', 1)
    worker = start_worker(log)
    try:
        for _ in range(WARMUP_DELIVERIES):  # the first also waits for the worker to start
            trigger_once(target, body, out)
            trigger_once(target, bare_body, out)
        timings, bare = [], []
        for _ in range(deliveries):
            timings.append(trigger_once(target, body, out))
            bare.append(trigger_once(target, bare_body, out))
        latencies = [timing["running"] for timing in timings]
        p50, p95 = percentile(latencies, 0.50), percentile(latencies, 0.95)
        print(f"trigger: {deliveries} deliveries one at a time, POST to step running")
        print(f"  p50 {p50:.1f} ms ({met(p50 <= 20)}: at most 20 ms)")
        print(f"  p95 {p95:.1f} ms ({met(p95 <= 50)}: at most 50 ms)")
        print(f"  min {min(latencies):.1f} ms, max {max(latencies):.1f} ms")
        print_stages(timings)
        overhead = sandbox_overhead_ms(timings, bare)
        time.sleep(1)  # let the last run's aftermath settle
        idle = idle_cpu_pct(worker.pid, idle_seconds)
        print(
            f"idle worker: {idle:.2f}% of one core over {idle_seconds:.0f} s ({met(idle <= 1)}: 1%)"
        )
    finally:
        stop(worker)
    return {
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "sandbox_overhead_ms": round(overhead, 1),
        "idle_cpu_pct": round(idle, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=50)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    arguments = parser.parse_args()
    log = output_log("trigger")
    print(f"receiver and worker output: {log}", flush=True)
    print_load("before")
    with (
        tempfile.TemporaryDirectory(prefix="hookrunner-bench-trigger-") as data_dir,
        # Outside DATA_DIR, which steps never see: the steps write their stamps here.
        tempfile.TemporaryDirectory(prefix="hookrunner-bench-stamps-") as out,
    ):
        target = configure_own_server(Path(data_dir), runs=0)
        write_pipelines(Path(data_dir), Path(out))
        migrate(log)
        import django

        django.setup()
        server = start_gunicorn(log)
        try:
            wait_until_listening(server, target)
            figures = bench(target, Path(out), arguments.deliveries, arguments.idle_seconds, log)
        finally:
            stop(server)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
