"""Fault scenarios against a served hookrunner: a database blip, a stranded delivery, YAML
bombs and hostile payloads (issue 12, items 1, 4, 5 and 7).

hookrunner runs as deployed: gunicorn with deploy/gunicorn.conf.py (two processes, one per
core, as that file advises on PostgreSQL) and one `manage.py worker --interval 0.1`, in a
temporary DATA_DIR with its own pipelines file, on PostgreSQL: the database DATABASE_URL
names, or else `hr_bench_faults` on 127.0.0.1:5432 (user postgres), created (a leftover
one dropped first) and dropped at the end. A given database must hold no deliveries and
is left without any. The worker looks after stranded deliveries every second
(REAP_SECONDS=1) and says a running step is alive every 0.5 s (RUN_HEARTBEAT_SECONDS), so
that it meets the blip while its step runs. Deliveries are signed as GitHub signs them.

1. Database blip (item 1): a push starts a run whose step prints, sleeps 5 s and prints
   again. Once its first line is stored, every backend of the database but this script's
   own is terminated (the worker's, its upkeep's, gunicorn's), and new connections are
   refused for 3 s (ALTER DATABASE ... ALLOW_CONNECTIONS false, from the server's
   `postgres` database). Figures: the run's final status (target "succeeded"), its
   output complete, the worker process still alive, the receiver answering 202 after.
2. Stranded delivery (item 4): a push is stored `received` through the ORM with
   received_at two minutes ago and never processed, as a web process killed between
   storing and processing leaves it. Target: the worker's upkeep processes it from its
   stored payload (accepted, with its run) within seconds. Also: a repeat of a delivery
   still being processed (stored just now) is answered non-2xx (409).
3. YAML bombs (item 5): while two clients keep posting pushes (each 20 per second at
   most), pipelines.yaml is replaced in turn by a 4.7 KB merge-key bomb (`<<: [*l5, ...]`
   nested six levels), a 9 MB file and 10,000 nested `[`, each for 4 s, then the good
   file again. The gunicorn processes' VmHWM (/proc/PID/status, sampled every 0.1 s) and
   every answer's time are recorded. Targets: peak RSS under 300 MB, every answer under
   5 s; also each file refused (/healthz says invalid) and the good one back in force.
4. Fuzz (item 7): a few hundred signed hostile bodies: lone surrogate escapes in ref,
   sender and repository, 5,000-digit integers, pull request numbers negative or past
   2^63, NaN and Infinity, deep nesting, invalid UTF-8, huge strings, wrong types,
   control characters, form-encoded bodies, odd headers, and random mutations (seeded)
   of tests/fixtures/github/, one at a time. Targets: no 500 answer that is not JSON,
   every 5xx answer's delivery id in the server's log (`delivery=<id>`), and every body
   answered (the fuzz stops after 3 in a row went unanswered within 30 s). Also counted:
   deliveries stored `failed` (which reconcile would redeliver) and how the runs they
   started ended.

Run from the project folder (a minute or two):

    .venv/bin/python bench/faults.py [--seed 12] [--mutations 250] [--scenarios blip,fuzz]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/NAME .venv/bin/python bench/faults.py

The last line is one JSON object: db_blip_run_status, stranded_processed, bomb_rss_mb,
bomb_max_answer_ms, fuzz_html_500, fuzz_unlogged_5xx, and more (those of the scenarios
run: --scenarios picks some). Exit status 1 when a target is not met.
"""

import argparse
import functools
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import met, output_log, print_load  # noqa: E402
from bench.faults_instance import (  # noqa: E402
    Answer,
    choose_database,
    create_database,
    db_blip,
    delete_everything_made,
    drop_database,
    healthz,
    log_text,
    new_id,
    post,
    push_body,
    refuse_unless_empty,
    stranded,
    wait_for,
)
from bench.faults_payloads import Case, mutated_cases, targeted_cases  # noqa: E402
from bench.faults_yaml import (  # noqa: E402
    PeakMemory,
    big_text,
    bomb_text,
    deep_text,
    replace_file,
)
from bench.served import (  # noqa: E402
    Target,
    configure_own_server,
    migrate,
    start_gunicorn,
    stop,
    wait_until_listening,
)
from bench.trigger import start_worker  # noqa: E402

SCENARIOS = ("blip", "stranded", "bomb", "fuzz")
SERVER_ENV = {
    "WEB_WORKERS": "2",
    "REAP_SECONDS": "1",
    "RUN_HEARTBEAT_SECONDS": "0.5",
}
# Bodies in a row left unanswered after which the fuzz stops: the receiver is gone.
FUZZ_GIVE_UP_AFTER = 3
BOMB_HOLD_SECONDS = 4.0
BOMB_CLIENTS = 2
BOMB_PAUSE_SECONDS = 0.05
RSS_TARGET_MB = 300
ANSWER_TARGET_MS = 5000
# '*/*' covers acme/webapp as well and adds its pipelines there: the blip's push must
# start the blip's run alone.
PIPELINES = """\
repositories:
  acme/webapp:
    pipelines:
      blip:
        on: {push: {branches: blip}}
        steps: [{name: slow, run: 'echo before; sleep 5; echo after'}]
      quick:
        on: {push: {branches: ['**', '!blip', '!idle']}, pull_request: null}
        steps: [{name: quick, run: 'true'}]
  '*/*':
    pipelines:
      any:
        on: {push: {branches: ['**', '!idle', '!blip']}, pull_request: null}
        steps: [{name: quick, run: 'true'}]
"""


# --- 3. YAML that costs memory ---------------------------------------------------------


def new_refusal(target: Target, before: str) -> str | None:
    """What /healthz says of the pipelines file, if it is a refusal other than `before`."""
    state = healthz(target).get("pipelines", "?")
    return state if state not in ("ok", before) else None


class Pusher(threading.Thread):
    """Posts pushes to a branch no pipeline runs for, one at a time, until stopped."""

    def __init__(self, target: Target) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.answers: list[Answer] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        body = push_body("refs/heads/idle")
        while not self.stopping.is_set():
            self.answers.append(post(self.target, "push", body, new_id("bomb")))
            self.stopping.wait(BOMB_PAUSE_SECONDS)


def yaml_bombs(target: Target, pipelines: Path, server_pid: int) -> dict:
    print("3. pipelines.yaml replaced by YAML that costs memory (item 5)", flush=True)
    memory = PeakMemory(server_pid)
    baseline = memory.peak_mb()
    memory.start()
    pushers = [Pusher(target) for _ in range(BOMB_CLIENTS)]
    for pusher in pushers:
        pusher.start()
    time.sleep(1.5)
    refused, before = {}, "ok"
    hostile = [
        ("merge-key bomb", bomb_text(PIPELINES)),
        ("9 MB file", big_text()),
        ("10,000 nested [", deep_text()),
    ]
    for name, text in hostile:
        replace_file(pipelines, text)
        placed = time.monotonic()
        state = wait_for(functools.partial(new_refusal, target, before), 10, 0.2)
        refused[name] = state or "never refused"
        before = state or before
        print(f"  {name} ({len(text):,} bytes): /healthz says {str(state)[:150]!r}", flush=True)
        time.sleep(max(BOMB_HOLD_SECONDS - (time.monotonic() - placed), 0))
    replace_file(pipelines, PIPELINES + "# restored\n")
    restored = bool(wait_for(lambda: healthz(target).get("pipelines", "?") == "ok", 10, 0.2))
    time.sleep(1)
    for pusher in pushers:
        pusher.stopping.set()
    for pusher in pushers:
        pusher.join()
    memory.stopping.set()
    memory.join()
    memory.sample()
    answers = [answer for pusher in pushers for answer in pusher.answers]
    slowest = max((answer.ms for answer in answers), default=0.0)
    outcomes = Counter(
        f"{answer.status} {(answer.json() or {}).get('status', '?')}" for answer in answers
    )
    peak = memory.peak_mb()
    print(f"  the good file back in force: {restored}")
    print(
        f"  gunicorn peak RSS (VmHWM) {peak:.1f} MB, {baseline:.1f} MB before "
        f"({met(peak < RSS_TARGET_MB)}: under {RSS_TARGET_MB} MB), "
        f"{len(memory.peaks)} processes seen"
    )
    print(
        f"  {len(answers)} pushes meanwhile, slowest answer {slowest:.1f} ms "
        f"({met(slowest < ANSWER_TARGET_MS)}: every answer under {ANSWER_TARGET_MS} ms); "
        f"{dict(outcomes)}",
        flush=True,
    )
    return {
        "bomb_rss_mb": round(peak, 1),
        "bomb_max_answer_ms": round(slowest, 1),
        "bomb_rss_before_mb": round(baseline, 1),
        "bomb_answers": len(answers),
        "bomb_answers_not_202": sum(answer.status != 202 for answer in answers),
        "bomb_files_refused": sum(not state.startswith("never") for state in refused.values()),
        "bomb_good_file_restored": restored,
    }


# --- 4. hostile payloads ---------------------------------------------------------------


def fuzz(target: Target, log: Path, seed: int, mutations: int, worker) -> dict:
    from runner.models import Delivery, Run

    print("4. signed hostile payloads (item 7)", flush=True)
    cases = targeted_cases() + mutated_cases(mutations, random.Random(seed))  # noqa: S311
    answers: list[tuple[Case, Answer]] = []
    started = time.monotonic()
    for number, case in enumerate(cases):
        answer = post(
            target, case.event, case.body, f"fuzz-{number:04d}-{secrets.token_hex(4)}",
            case.content_type, dict(case.headers),
        )  # fmt: skip
        answers.append((case, answer))
        if [a.status for _, a in answers[-FUZZ_GIVE_UP_AFTER:]] == [0] * FUZZ_GIVE_UP_AFTER:
            print(f"  the receiver stopped answering: stopped after {len(answers)} bodies")
            break
    seconds = time.monotonic() - started
    time.sleep(0.5)  # the last lines reach the log
    said = log_text(log)
    errors = [(case, answer) for case, answer in answers if answer.status >= 500]
    html_500 = [
        (case, answer)
        for case, answer in errors
        if answer.status == 500 and not answer.content_type.startswith("application/json")
    ]
    unlogged = [(c, a) for c, a in errors if f"delivery={a.delivery_id}" not in said]
    broken = [(case, answer) for case, answer in answers if answer.status == 0]
    not_json = [(c, a) for c, a in answers if a.status and not isinstance(a.json(), dict)]
    statuses = Counter(answer.status for _, answer in answers)
    ids = [answer.delivery_id for _, answer in answers]
    failed = Delivery.objects.filter(delivery_id__in=ids, status="failed").count()
    unfinished = Run.objects.filter(delivery__delivery_id__in=ids, finished_at__isnull=True)
    wait_for(lambda: not unfinished.exists(), 120, 0.2)
    runs = Counter(
        Run.objects.filter(delivery__delivery_id__in=ids).values_list("status", flat=True)
    )
    kinds = Counter(case.kind.split()[0] for case, _ in answers)
    print(f"  {len(answers)} of {len(cases)} bodies sent in {seconds:.1f} s ({dict(kinds)})")
    print(f"  answers by status: {dict(sorted(statuses.items()))}")
    print(f"  HTML 500s: {len(html_500)} ({met(not html_500)}: 0)")
    print(f"  5xx answers not in the log: {len(unlogged)} ({met(not unlogged)}: 0)")
    print(f"  no answer: {len(broken)} ({met(not broken)}: every body answered)")
    print(f"  answers that are not a JSON object: {len(not_json)}")
    print(f"  deliveries stored as failed (reconcile would redeliver them): {failed}")
    print(f"  runs they started, by end: {dict(runs)}; worker alive: {worker.poll() is None}")
    for case, answer in [*errors, *broken, *not_json][:20]:
        print(
            f"    {case.describe()[:120]}: {answer.status} {answer.content_type} "
            f"{answer.body[:80]!r} ({answer.delivery_id})"
        )
    by_id = {answer.delivery_id: case for case, answer in answers}
    unsuccessful = Run.objects.filter(delivery__delivery_id__in=ids).exclude(status="succeeded")
    for run_id, delivery_id, status, detail in unsuccessful.values_list(
        "pk", "delivery__delivery_id", "status", "detail"
    )[:20]:
        print(f"    run {run_id} {status}: {detail[:120]} <- {by_id[delivery_id].describe()[:120]}")
    sys.stdout.flush()
    return {
        "fuzz_html_500": len(html_500),
        "fuzz_unlogged_5xx": len(unlogged),
        "fuzz_sent": len(answers),
        "fuzz_5xx": len(errors),
        "fuzz_no_answer": len(broken),
        "fuzz_not_json": len(not_json),
        "fuzz_stored_failed": failed,
        "fuzz_runs": dict(runs),
    }


# --- the whole ---------------------------------------------------------------------------


TARGETS = {
    "db_blip_run_status": lambda status: status == "succeeded",
    "stranded_processed": lambda processed: processed is True,
    "bomb_rss_mb": lambda mb: mb < RSS_TARGET_MB,
    "bomb_max_answer_ms": lambda ms: ms < ANSWER_TARGET_MS,
    "fuzz_html_500": lambda count: count == 0,
    "fuzz_unlogged_5xx": lambda count: count == 0,
    "fuzz_no_answer": lambda count: count == 0,
}


def targets_met(figures: dict) -> bool:
    """Whether every target of the scenarios that ran is met."""
    return all(holds(figures[key]) for key, holds in TARGETS.items() if key in figures)


def bench(target: Target, pipelines: Path, arguments, log: Path) -> dict:
    started = time.monotonic()
    server = start_gunicorn(log)
    worker = start_worker(log)
    try:
        wait_until_listening(server, target)
        if not wait_for(lambda: (healthz(target).get("workers") or {}).get("alive"), 30, 0.2):
            print("  (no worker reported alive to /healthz within 30 s)")
        figures = {}
        if "blip" in arguments.scenarios:
            figures |= db_blip(target, worker, log)
        if "stranded" in arguments.scenarios:
            figures |= stranded(target)
        if "bomb" in arguments.scenarios:
            figures |= yaml_bombs(target, pipelines, server.pid)
        if "fuzz" in arguments.scenarios:
            figures |= fuzz(target, log, arguments.seed, arguments.mutations, worker)
        figures["worker_alive_at_end"] = worker.poll() is None
        figures["seconds"] = round(time.monotonic() - started)
        said = log_text(log)
        print(
            f"server and worker log: {len(said.splitlines())} lines, "
            f"{said.count('Traceback')} tracebacks, {said.count(' ERROR ')} ERROR lines"
        )
    finally:
        stop(worker)
        stop(server)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=12, help="of the random mutations")
    parser.add_argument("--mutations", type=int, default=250, help="random fixture mutations")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated, of " + ",".join(SCENARIOS),
    )
    arguments = parser.parse_args()
    arguments.scenarios = arguments.scenarios.split(",")
    if unknown := set(arguments.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenarios {', '.join(sorted(unknown))}")
    # Stopped (timeout, kill), the servers, the data folder and the database go too.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    created_on, url = choose_database()
    log = output_log("faults")
    print(f"server and worker output: {log}", flush=True)
    print_load("before")
    if created_on:
        create_database(created_on)
    os.environ["DATABASE_URL"] = url
    os.environ.update(SERVER_ENV)
    try:
        with tempfile.TemporaryDirectory(prefix="hookrunner-bench-faults-") as data_dir:
            target = configure_own_server(Path(data_dir), runs=0)
            pipelines = Path(data_dir) / "pipelines.yaml"
            pipelines.write_text(PIPELINES)
            migrate(log)
            import django

            django.setup()
            from django.db import connections
            from django.utils import timezone

            refuse_unless_empty()
            started_at = timezone.now()
            print(f"database {connections['default'].settings_dict['NAME']} (PostgreSQL)")
            try:
                figures = bench(target, pipelines, arguments, log)
            finally:
                if not created_on:
                    delete_everything_made(started_at)
                connections.close_all()
    finally:
        if created_on:
            drop_database(created_on)
    print_load("after")
    figures["database"] = "postgresql"
    print(json.dumps(figures))
    return 0 if targets_met(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
