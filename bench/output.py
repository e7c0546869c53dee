"""Benchmark of step output through the worker: capture speed, step overhead, memory.

Each run is queued as the receiver queues it (intake.receive of a stored `push`, called in
this process: the receiver is not measured here, so none runs) and executed by a fresh
`manage.py worker --interval 0.1` process on a SQLite file database in a temporary
DATA_DIR; once the run has finished, the worker's VmHWM is read from /proc/PID/status and
the worker is stopped. STEP_OUTPUT_LIMIT is raised above the largest output.

1. Capture: a step prints 200 MB of short lines as fast as it can
   (`yes "some short line of output" | head -c 200000000`). Throughput = 200 MB / the time
   from Step.started_at (just after the process started) to the last LogChunk's
   created_at (the time of the statement that inserted it). Stored bytes = the LogChunk
   texts' UTF-8 lengths summed, compared with the bytes printed. Beside it, on SQLite, the
   same bytes stored by SQLite alone (bench/sqlite_ceiling.py): how fast capture could go
   into this database on this machine.
2. Overhead: a Python program that computes for about 2 s (calibrated once, here) while
   printing 50,000 lines, each flushed (`python -u`, as PYTHONUNBUFFERED=1 makes a test
   runner do). Three times through hookrunner (the Step's started_at..finished_at) and
   three times directly with its output to /dev/null (wall time), alternately;
   overhead = (median through hookrunner / median direct - 1) * 100. For reference, the
   program is also timed into `| cat`: what a pipe alone costs. The step runs in its
   sandbox, as every step does by default, and three times more in a pipeline with
   `sandbox: off`: the sandbox's share = (median sandboxed / median unsandboxed - 1) * 100.
   The program is run by the system's python3 (hookrunner's own, in its folder, is hidden
   from steps) from a folder the pipeline names readonly.
3. Memory: the worker's peak RSS (VmHWM) with 20 MB and with 200 MB of output.

Targets with SQLite on a 2-core machine: capture at least 300 MB/s with every byte stored,
step overhead at most 3% (the sandbox's share of it under 3%), peak RSS flat: within 10%
between 20 MB and 200 MB of output.
Run from the project folder:

    .venv/bin/python bench/output.py

The last line is one JSON object: capture_mb_s, sqlite_ceiling_mb_s (null on PostgreSQL),
step_overhead_pct, sandbox_step_overhead_pct, rss_mb_20, rss_mb_200, stored_bytes. The exit
status is 1 when stored bytes differ from printed bytes.
"""

import json
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import met, output_log, print_load  # noqa: E402
from bench.served import PAYLOAD_FILE, configure_own_server, migrate, stop  # noqa: E402
from bench.trigger import start_worker, wait_until_finished  # noqa: E402

MB = 1_000_000
CAPTURE_BYTES = 200 * MB
SMALL_BYTES = 20 * MB
# `|| true`: yes ends by SIGPIPE, which a shell with pipefail would take for a failure.
PRINTED_LINE = "some short line of output\n"
PRINT_COMMAND = f'(yes "{PRINTED_LINE.strip()}" || true) | head -c {{size}}'
LINES = 50_000
COMPUTE_SECONDS = 2.0
# Not sys.executable: hookrunner's virtual environment is in its own folder, which the
# sandbox hides from steps.
SYSTEM_PYTHON = "/usr/bin/python3"
REPEATS = 3
RUN_TIMEOUT_SECONDS = 600.0
COMPUTE_PROGRAM = """\
import sys

iterations = int(sys.argv[1])
every = iterations // LINES
checksum = 0
for i in range(iterations):
    checksum = (checksum * 31 + i * i) % 1_000_003
    if i % every == 0:
        print(f"test_{i // every:05d} passed, checksum {checksum}")
""".replace("LINES", str(LINES))


def configure(data_dir: Path) -> None:
    """This process's environment, inherited by migrate and the workers."""
    configure_own_server(data_dir, runs=0)
    # The first half of the limit is the head, stored as it comes: all of it here.
    os.environ["STEP_OUTPUT_LIMIT"] = str(4 * CAPTURE_BYTES)


def compute_command(programs: Path, iterations: int) -> str:
    program = programs / "compute.py"
    program.write_text(COMPUTE_PROGRAM)
    return f'"{SYSTEM_PYTHON}" -u "{program}" {iterations}'


def time_directly(command: str, output: str = "") -> float:
    """Wall seconds of `command` + `output` (say " | cat") run by /bin/sh into /dev/null."""
    started = time.perf_counter()
    subprocess.run(["/bin/sh", "-c", command + output], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def calibrated_iterations(programs: Path) -> int:
    """Iterations (a multiple of LINES) for which the program takes about 2 s directly."""
    iterations = 40 * LINES
    for _ in range(2):  # a first guess, then a closer one from a run of about 2 s
        seconds = time_directly(compute_command(programs, iterations))
        iterations = max(round(iterations * COMPUTE_SECONDS / seconds / LINES), 1) * LINES
    return iterations


def write_pipelines(data_dir: Path, commands: dict[str, str], sandboxes: dict) -> None:
    """One pipeline per branch, its one step running the branch's command, its sandbox
    the branch's in `sandboxes` (the default where none is given).

    Written as JSON, which YAML reads as flow style: no quoting to get wrong.
    """
    pipelines = {
        branch: {
            "on": {"push": {"branches": branch}},
            "steps": [{"name": branch, "run": run}],
            **({"sandbox": sandboxes[branch]} if branch in sandboxes else {}),
        }
        for branch, run in commands.items()
    }
    path = data_dir / "output-pipelines.yaml"
    path.write_text(json.dumps({"repositories": {"acme/webapp": {"pipelines": pipelines}}}))
    os.environ["PIPELINES_FILE"] = str(path)


def queue_run(branch: str) -> int:
    """Store a push to `branch` and queue its run, as the receiver does; the run's id."""
    from runner.config.github import event_from_payload
    from runner.config.store import current_pipelines
    from runner.receiver import intake

    payload = json.loads(PAYLOAD_FILE.read_text())
    payload["ref"] = f"refs/heads/{branch}"
    event = event_from_payload("push", payload, delivery_id=secrets.token_hex(8))
    (run_id,) = intake.receive(event, current_pipelines()).runs
    return run_id


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MB
    raise RuntimeError("no VmHWM in /proc/PID/status")


def execute_in_fresh_worker(branch: str, log: Path):
    """The finished Run of a push to `branch`, and the peak RSS in MB of its worker."""
    run_id = queue_run(branch)
    worker = start_worker(log)
    try:
        run = wait_until_finished(run_id, RUN_TIMEOUT_SECONDS)
        peak = peak_rss_mb(worker.pid)
    finally:
        stop(worker)
    return run, peak


def stored_bytes(step) -> int:
    texts = step.chunks.values_list("text", flat=True).iterator(chunk_size=64)
    return sum(len(text.encode()) for text in texts)


def bench_capture(log: Path) -> dict:
    from django.db.models import Count, Max

    run, peak = execute_in_fresh_worker("print200", log)
    step = run.steps.get()
    chunks = step.chunks.aggregate(rows=Count("id"), last=Max("created_at"))
    seconds = (chunks["last"] - step.started_at).total_seconds()
    stored = stored_bytes(step)
    mb_s = CAPTURE_BYTES / MB / seconds
    print(f"capture: {CAPTURE_BYTES / MB:.0f} MB printed, from step start to last chunk stored")
    print(f"  {seconds:.2f} s = {mb_s:.1f} MB/s ({met(mb_s >= 300)}: at least 300 MB/s)")
    print(f"  step duration {step.duration.total_seconds():.2f} s, {chunks['rows']} chunk rows")
    print(
        f"  stored {stored} bytes of {CAPTURE_BYTES} printed "
        f"({'all stored' if stored == CAPTURE_BYTES else 'NOT all stored'}), "
        f"counted {step.output_bytes}, dropped {step.dropped_bytes}"
    )
    ceiling = sqlite_ceiling()
    if ceiling is not None:
        print(f"  SQLite alone, storing the same rows: {ceiling:.1f} MB/s (capture at "
              f"{mb_s / ceiling * 100:.0f}% of it)")  # fmt: skip
    return {
        "capture_mb_s": round(mb_s, 1),
        "sqlite_ceiling_mb_s": ceiling,
        "stored_bytes": stored,
        "rss_mb_200": round(peak, 1),
    }


def sqlite_ceiling() -> float | None:
    """MB/s of SQLite alone storing the capture's output as the worker does (None on
    another database): how far capture could go on this machine without another store."""
    from django.db import connection

    from bench.sqlite_ceiling import ceiling_mb_s
    from runner.execution.step_log import PIECE_BYTES

    if connection.vendor != "sqlite":
        return None
    piece = (PRINTED_LINE * (PIECE_BYTES // len(PRINTED_LINE) + 1))[:PIECE_BYTES]
    return round(ceiling_mb_s(Path(connection.settings_dict["NAME"]), piece, CAPTURE_BYTES), 1)


def bench_overhead(command: str, log: Path) -> tuple[float, float]:
    """Overhead in percent, and the sandbox's share of it; also times the pipe alone
    (into cat), for reference."""
    direct, piped, through, unsandboxed = [], [], [], []
    for _ in range(REPEATS):
        direct.append(time_directly(command))
        piped.append(time_directly(command, " | cat"))
        run, _peak = execute_in_fresh_worker("compute", log)
        through.append(run.steps.get().duration.total_seconds())
        run, _peak = execute_in_fresh_worker("computebare", log)
        unsandboxed.append(run.steps.get().duration.total_seconds())
    overhead = (statistics.median(through) / statistics.median(direct) - 1) * 100
    sandbox = (statistics.median(through) / statistics.median(unsandboxed) - 1) * 100
    best = (min(through) / min(direct) - 1) * 100
    pipe = (statistics.median(piped) / statistics.median(direct) - 1) * 100
    print(f"step overhead: {LINES} flushed lines from ~{COMPUTE_SECONDS:.0f} s of computing")
    print(f"  directly to /dev/null:   {seconds_list(direct)}")
    print(f"  directly into | cat:     {seconds_list(piped)} (medians {pipe:+.1f}%)")
    print(f"  through hookrunner:      {seconds_list(through)}")
    print(f"  medians {overhead:+.1f}% ({met(overhead <= 3)}: at most 3%), best {best:+.1f}%")
    print(f"  with sandbox: off:       {seconds_list(unsandboxed)}")
    print(f"  the sandbox's share: medians {sandbox:+.1f}% ({met(sandbox < 3)}: under 3%)")
    return overhead, sandbox


def seconds_list(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in values) + " s"


def bench_memory(rss_mb_200: float, log: Path) -> float:
    _run, rss_mb_20 = execute_in_fresh_worker("print20", log)
    spread = abs(rss_mb_200 / rss_mb_20 - 1) * 100
    print("worker peak RSS (VmHWM), a fresh worker each time:")
    print(f"  {rss_mb_20:.1f} MB with 20 MB of output, {rss_mb_200:.1f} MB with 200 MB")
    print(f"  {spread:.1f}% apart ({met(spread <= 10)}: flat, within 10%)")
    return rss_mb_20


def main() -> int:
    log = output_log("output")
    print(f"worker output: {log}", flush=True)
    print_load("before")
    with (
        tempfile.TemporaryDirectory(prefix="hookrunner-bench-output-") as data_dir,
        # Outside DATA_DIR, which steps never see.
        tempfile.TemporaryDirectory(prefix="hookrunner-bench-programs-") as programs,
    ):
        data_dir = Path(data_dir)
        configure(data_dir)
        compute = compute_command(Path(programs), calibrated_iterations(Path(programs)))
        commands = {
            "print200": PRINT_COMMAND.format(size=CAPTURE_BYTES),
            "print20": PRINT_COMMAND.format(size=SMALL_BYTES),
            "compute": compute,
            "computebare": compute,
        }
        sandboxes = {"compute": {"readonly": [programs]}, "computebare": False}
        write_pipelines(data_dir, commands, sandboxes)
        migrate(log)
        import django

        django.setup()
        logging.getLogger("runner").setLevel(logging.WARNING)  # the workers' go to the log
        figures = bench_capture(log)
        overhead, sandbox = bench_overhead(compute, log)
        figures["step_overhead_pct"] = round(overhead, 1)
        figures["sandbox_step_overhead_pct"] = round(sandbox, 1)
        figures["rss_mb_20"] = round(bench_memory(figures["rss_mb_200"], log), 1)
    keys = ("capture_mb_s", "sqlite_ceiling_mb_s", "step_overhead_pct",
            "sandbox_step_overhead_pct", "rss_mb_20", "rss_mb_200", "stored_bytes")  # fmt: skip
    print(json.dumps({key: figures[key] for key in keys}))
    return int(figures["stored_bytes"] != CAPTURE_BYTES)


if __name__ == "__main__":
    sys.exit(main())
