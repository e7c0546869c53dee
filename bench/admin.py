"""Benchmark of the runs in admin at scale: the run list and a run page with a 10 MiB log.

The data: a SQLite file with 100,000 runs and 1,000,000 log chunks, built here with plain
SQL inserts (one executemany per table, in one transaction, after `migrate`):

  * ~50,000 `push` and `pull_request` deliveries over 90 days, each starting 1-3 runs, from
    6 repositories with 2-4 pipelines each; every delivery stores the same payload
    (tests/fixtures/github/push__branch.json, 5.5 KB as stored), every run its pipeline's
    definition;
  * runs in every status (the newest 8 queued, the next 4 running, the others mostly
    succeeded, some failed, cancelled, timed out or in error), on main, feature branches,
    tags and pull requests, a sha per delivery, and their steps (none for a queued run or
    one in error, skipped ones after a failure);
  * 1,000,000 LogChunk rows of 200-2000 bytes of log-like text (a few lines in colour),
    spread over the steps that ran, more for test and build steps than for a checkout;
    160 of them (64 KiB each, 10 MiB in all, ANSI colours on about one line in ten, and
    some `<`, `>` and `&` to escape) are the single step's output of one failed run,
    BIG_RUN_ID, a hundred runs before the newest.

The built file is kept in the temporary folder (/tmp/hookrunner-bench-admin-vN-H.sqlite3,
N the BUILD_VERSION below, H a digest of the names of runner/migrations, so a new
migration means a new build; building removes earlier builds) and copied fresh into a
temporary DATA_DIR for every run of the script, so a second run skips the build and no
run measures what another one changed. `--rebuild` builds it again.

What is measured: in this process, through Django's test Client logged in as a superuser
(`force_login`: the session and user lookups of every admin request are included), the
wall time of a GET from the request to the complete response content, as Django's
handler and middleware produce it for gunicorn (no socket, no gunicorn):

  * the run list's first page, `/admin/runner/run/`: plain, filtered by status (failed),
    and searched by the first 7 characters of a sha; median and p95 of 20 requests each
    after 3 unmeasured ones;
  * the page of the run with the 10 MiB log: median and p95 of 10 requests after 3;
  * the number of queries of each page, counted over one more request
    (CaptureQueriesContext), and the response size of the big run's page.

Targets on SQLite (2-core machine): each page in under 300 ms (median), and a number of
queries that does not grow with the rows shown. Once every page is measured, each page
that missed its target (every page with `--profile`) is looked into: the functions with
the most time of their own over 3 requests (cProfile), then each query of one request
with the line that issued it (hookrunner's, else Django admin's) and its time when run
again alone, execute and fetch.

Run from the project folder:

    .venv/bin/python bench/admin.py [--rebuild] [--profile]

The last line is one JSON object: run_list_ms, run_list_queries, run_page_ms,
run_page_queries (the medians of the plain list and of the big run's page).
"""

import argparse
import cProfile
import hashlib
import json
import math
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.receiver import PAYLOAD_FILE, configure_own_server  # noqa: E402

BUILD_VERSION = 1  # change it whenever the data built below changes
CACHE_PREFIX = "hookrunner-bench-admin-v"
SEED = 20261127
RUNS = 100_000
CHUNKS = 1_000_000  # in all, the big run's included
BIG_RUN_ID = RUNS - 100
BIG_REPOSITORY, BIG_PIPELINE, BIG_STEP = "acme/webapp", "e2e", "end-to-end tests"
BIG_CHUNKS = 160
BIG_CHUNK_CHARS = 64 * 1024  # ASCII: as many bytes
HISTORY = timedelta(days=90)
QUEUED_NEWEST, RUNNING_NEXT = 8, 4
TARGET_MS = 300.0
WARMUP = 3
LIST_REQUESTS, PAGE_REQUESTS = 20, 10
SUPERUSER = "bench"
PROFILE_LINES, SQL_SHOWN = 8, 150

REPOSITORIES = {
    "acme/webapp": {
        "tests": ("checkout", "install", "lint", "unit tests", "integration tests"),
        "build": ("checkout", "install", "build", "package"),
        "deploy": ("checkout", "build", "migrate", "deploy"),
        "e2e": ("end-to-end tests",),
    },
    "acme/api": {
        "tests": ("checkout", "install", "unit tests"),
        "docker": ("checkout", "build image", "push image"),
        "deploy": ("checkout", "deploy"),
    },
    "acme/mobile": {
        "tests": ("checkout", "install", "lint", "unit tests"),
        "build": ("checkout", "install", "build"),
    },
    "acme/infra": {
        "plan": ("checkout", "init", "plan"),
        "apply": ("checkout", "init", "apply"),
    },
    "tools/cli": {
        "tests": ("checkout", "unit tests"),
        "release": ("checkout", "build", "package", "publish"),
    },
    "oss/parser": {
        "tests": ("checkout", "install", "unit tests"),
        "docs": ("checkout", "build docs"),
        "fuzz": ("checkout", "build", "fuzz"),
    },
}
REPOSITORY_WEIGHTS = (40, 25, 10, 8, 9, 8)
# How much output a step prints, relative to the others (times a random 0.3-1.7).
STEP_WEIGHTS = {"checkout": 1, "install": 3, "lint": 2, "init": 1, "deploy": 3, "publish": 1}
LOUD_STEP_WEIGHT = 8  # tests, builds, fuzzing...
LOUD_WORDS = ("test", "build", "fuzz", "package", "plan", "apply", "image")
STATUSES = {"succeeded": 72, "failed": 17, "cancelled": 5, "timed_out": 2, "error": 4}
SENDERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
           "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor")  # fmt: skip
BRANCHES = ("main",) * 12 + tuple(
    f"{kind}/{topic}"
    for kind in ("feature", "fix", "chore")
    for topic in ("login", "billing", "search", "cache", "deps", "retry", "export", "docs")
)

# Lines of log; `{n}` is a number, `{w}` a word. A few use colour, a few need escaping.
PLAIN_LINES = (
    "tests/test_{w}.py::test_{w}_{n} PASSED",
    "Collecting {w}>=2.{n} (from -r requirements.txt (line {n}))",
    "  Downloading {w}-3.{n}.0-py3-none-any.whl (1{n} kB)",
    "[ {n}%] Building CXX object src/CMakeFiles/core.dir/{w}.cpp.o",
    '  File "/srv/app/{w}/models.py", line {n}, in <module>',
    "    assert response.status_code == 200 and len(items) > {n}",
    "npm WARN deprecated {w}@7.2.{n}: this version is no longer supported",
    "2026-11-27T10:{n}:02.123Z INFO {w}: request handled in {n} ms",
    "Step {n}/12 : RUN pip install --no-cache-dir {w} && rm -rf /tmp/{w}",
    "ok   github.com/acme/{w}/internal/{w}   0.{n}s",
)
COLOUR_LINES = (
    "\x1b[32mPASSED\x1b[0m tests/test_{w}.py::test_{w}_{n}",
    "\x1b[1;31mFAILED\x1b[0m tests/test_{w}.py::test_{w}_{n} - AssertionError",
    "\x1b[33mwarning:\x1b[0m unused variable `{w}` at src/{w}.rs:{n}",
    "\x1b[1m\x1b[36m==> \x1b[0mbuilding {w} ({n} of 40)",
)
WORDS = ("api", "auth", "billing", "cache", "db", "export", "login", "queue", "search", "user")


@dataclass
class Step:
    name: str
    status: str
    exit_code: int | None = None
    chunks: int = 0  # filled in once every step is known


@dataclass
class Run:
    id: int
    delivery: int
    repository: str
    pipeline: str
    event: str
    sha: str
    ref: str
    pr_number: int | None
    status: str
    created_at: datetime
    steps: list[Step] = field(default_factory=list)
    detail: str = ""


@dataclass(frozen=True)
class Delivery:
    id: int
    uuid: str
    event: str
    action: str
    repository: str
    sender: str
    ref: str
    received_at: datetime
    runs: int


@dataclass
class Measured:
    label: str
    url: str
    times: list[float] = field(default_factory=list)
    queries: int = 0
    shown: str = ""
    size: int = 0

    def percentile_ms(self, fraction: float) -> float:
        ordered = sorted(self.times)
        return ordered[max(math.ceil(fraction * len(ordered)), 1) - 1] * 1000

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1000


# --- the plan: what the database will hold ------------------------------------------------


def plan(rng: random.Random, now: datetime) -> tuple[list[Delivery], list[Run]]:
    """Deliveries and their runs, ids from 1, oldest first, over the last 90 days."""
    deliveries, runs = [], []
    pull_requests = dict.fromkeys(REPOSITORIES, 0)
    while len(runs) < RUNS:
        repository = rng.choices(list(REPOSITORIES), REPOSITORY_WEIGHTS)[0]
        pipelines = list(REPOSITORIES[repository])
        chosen = rng.sample(pipelines, rng.randint(1, min(3, len(pipelines))))
        chosen = chosen[: room_for_runs(len(runs))]
        event, action, ref, pr_number = push_or_pull_request(rng, pull_requests, repository)
        if not chosen:  # the big run's turn: a push to main starting only it
            repository, chosen = BIG_REPOSITORY, [BIG_PIPELINE]
            event, action, ref, pr_number = "push", "", "refs/heads/main", None
        at = now - HISTORY * (1 - len(runs) / RUNS)
        delivery = Delivery(
            id=len(deliveries) + 1,
            uuid=f"{rng.getrandbits(128):032x}",
            event=event,
            action=action,
            repository=repository,
            sender=rng.choice(SENDERS),
            ref=ref,
            received_at=at,
            runs=len(chosen),
        )
        deliveries.append(delivery)
        sha = f"{rng.getrandbits(160):040x}"
        for pipeline in chosen:
            run = Run(
                id=len(runs) + 1,
                delivery=delivery.id,
                repository=repository,
                pipeline=pipeline,
                event=event,
                sha=sha,
                ref=ref,
                pr_number=pr_number,
                status=status_of(rng, len(runs) + 1),
                created_at=at + timedelta(milliseconds=len(runs) % 7),
            )
            runs.append(run)
            if run.id == BIG_RUN_ID:
                make_big_run(run)
            else:
                add_steps(rng, run)
    spread_chunks(rng, runs)
    return deliveries, runs


def room_for_runs(planned: int) -> int:
    """How many runs the next delivery may start; none: it is the big run's own delivery."""
    return BIG_RUN_ID - 1 - planned if planned < BIG_RUN_ID else RUNS - planned


def push_or_pull_request(
    rng: random.Random, pull_requests: dict[str, int], repository: str
) -> tuple[str, str, str, int | None]:
    """event, action, ref, PR number"""
    if rng.random() < 0.2:
        if rng.random() < 0.3 or not pull_requests[repository]:
            pull_requests[repository] += 1
        number = pull_requests[repository]
        return "pull_request", "synchronize", f"refs/pull/{number}/merge", number
    if rng.random() < 0.03:
        tag = f"v1.{rng.randint(0, 40)}.{rng.randint(0, 9)}"
        return "push", "", f"refs/tags/{tag}", None
    return "push", "", f"refs/heads/{rng.choice(BRANCHES)}", None


def status_of(rng: random.Random, run_id: int) -> str:
    if run_id > RUNS - QUEUED_NEWEST:
        return "queued"
    if run_id > RUNS - QUEUED_NEWEST - RUNNING_NEXT:
        return "running"
    return rng.choices(list(STATUSES), list(STATUSES.values()))[0]


def make_big_run(run: Run) -> None:
    """The run whose one step printed 10 MiB and failed."""
    run.status, run.detail = "failed", f"step 1 ({BIG_STEP}) failed"
    run.steps = [Step(BIG_STEP, "failed", 1, BIG_CHUNKS)]


def add_steps(rng: random.Random, run: Run) -> None:
    """The run's steps as its status implies: none for queued, skipped after a stop."""
    names = REPOSITORIES[run.repository][run.pipeline]
    if run.status == "queued" or run.status == "error":
        run.detail = "" if run.status == "queued" else "a secret is missing: DEPLOY_TOKEN"
        return
    stop = rng.randrange(len(names))
    for position, name in enumerate(names):
        if run.status == "succeeded" or position < stop:
            run.steps.append(Step(name, "succeeded", 0))
        elif position > stop:
            run.steps.append(Step(name, "pending" if run.status == "running" else "skipped"))
        else:
            exit_code = {"failed": 1, "running": None}.get(run.status, -15)
            run.steps.append(Step(name, run.status, exit_code))
    if run.status != "succeeded" and run.status != "running":
        word = run.status.replace("_", " ")
        run.detail = f"step {stop + 1} ({names[stop]}) {word}"


def spread_chunks(rng: random.Random, runs: list[Run]) -> None:
    """Give the steps that ran CHUNKS - BIG_CHUNKS chunks in all, by how loud they are."""
    ran = [
        step
        for run in runs
        if run.id != BIG_RUN_ID
        for step in run.steps
        if step.status not in ("pending", "skipped")
    ]
    weights = [step_weight(step.name) * rng.uniform(0.3, 1.7) for step in ran]
    scale = (CHUNKS - BIG_CHUNKS) / sum(weights)
    for step, weight in zip(ran, weights, strict=True):
        step.chunks = max(1, int(weight * scale))
    missing = CHUNKS - BIG_CHUNKS - sum(step.chunks for step in ran)
    order = list(range(len(ran)))
    rng.shuffle(order)
    position = 0
    while missing:  # one more (or fewer) chunk each, in a random order, to the exact total
        step = ran[order[position % len(order)]]
        if missing > 0 or step.chunks > 1:
            step.chunks += 1 if missing > 0 else -1
            missing += -1 if missing > 0 else 1
        position += 1


def step_weight(name: str) -> float:
    if name in STEP_WEIGHTS:
        return STEP_WEIGHTS[name]
    return LOUD_STEP_WEIGHT if any(word in name for word in LOUD_WORDS) else 2


# --- the text of the output ---------------------------------------------------------------


def log_text(rng: random.Random, chars: int, colour_share: float) -> str:
    """At least `chars` characters of log lines, `colour_share` of them in colour."""
    lines, length = [], 0
    while length < chars:
        templates = COLOUR_LINES if rng.random() < colour_share else PLAIN_LINES
        line = rng.choice(templates).format(n=rng.randint(1, 99), w=rng.choice(WORDS))
        lines.append(line)
        length += len(line) + 1
    return "\n".join(lines) + "\n"


def big_log(rng: random.Random) -> list[str]:
    text = log_text(rng, BIG_CHUNKS * BIG_CHUNK_CHARS, colour_share=0.1)
    return [text[i * BIG_CHUNK_CHARS : (i + 1) * BIG_CHUNK_CHARS] for i in range(BIG_CHUNKS)]


# --- building the database ----------------------------------------------------------------


def build(path: Path) -> float:
    """Migrate the (new, empty) database of the settings and fill it; seconds taken."""
    from django.core.management import call_command
    from django.db import connection, transaction

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    print(f"  migrated in {time.perf_counter() - started:.1f} s", flush=True)
    rng = random.Random(SEED)  # noqa: S311 - data, not secrets
    now = datetime.now(UTC).replace(microsecond=0)
    deliveries, runs = plan(rng, now)
    print(
        f"  planned {len(deliveries)} deliveries, {len(runs)} runs, "
        f"{sum(len(run.steps) for run in runs)} steps",
        flush=True,
    )
    with connection.cursor() as cursor:
        # A file built from nothing: a crash leaves it to be thrown away, so no journal.
        cursor.execute("PRAGMA journal_mode=OFF")
        cursor.execute("PRAGMA synchronous=OFF")
    with transaction.atomic():
        insert_all(rng, deliveries, runs, now)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")  # as hookrunner's own connections leave it
    create_superuser()
    connection.close()
    seconds = time.perf_counter() - started
    print(f"  built in {seconds:.1f} s, {path.stat().st_size / 2**20:.0f} MiB", flush=True)
    return seconds


def insert_all(rng: random.Random, deliveries: list[Delivery], runs: list[Run], now) -> None:
    from runner import models

    payload = json.dumps(json.loads(PAYLOAD_FILE.read_text()))
    sizes: dict[int, int] = {}  # bytes of output by step id, as the chunks are made
    # In this order so steps know their output's size; foreign keys are checked at commit.
    phases = (
        (models.Delivery, lambda: delivery_rows(deliveries, payload)),
        (models.Run, lambda: run_rows(runs, now)),
        (models.LogChunk, lambda: chunk_rows(rng, runs, sizes)),
        (models.Step, lambda: step_rows(runs, sizes)),
    )
    for model, rows in phases:
        started = time.perf_counter()
        count = insert(model, rows())
        seconds = time.perf_counter() - started
        name = model._meta.verbose_name_plural
        print(f"  inserted {count} {name} in {seconds:.1f} s", flush=True)


def insert(model, rows: Iterator[dict]) -> int:
    """executemany of `rows` (dicts by field name, values as stored); how many.

    A field a row leaves out gets its model default, as the ORM would give it (a database
    default is left to the database)."""
    from django.db import connection

    first = next(rows)
    defaults = {
        field.column: field.get_db_prep_save(field.get_default(), connection)
        for field in model._meta.concrete_fields
        if field.name not in first and not field.primary_key and not field.has_db_default()
    }
    columns = [model._meta.get_field(name).column for name in first] + list(defaults)
    columns = [connection.ops.quote_name(column) for column in columns]  # Step.index
    names, constant = list(first), list(defaults.values())
    # Table and column names come from the model.
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    counted = [0]

    def values() -> Iterator[list]:
        for row in _chain_first(first, rows):
            counted[0] += 1
            yield [row[name] for name in names] + constant

    with connection.cursor() as cursor:
        cursor.executemany(sql, values())
    return counted[0]


def _chain_first(first: dict, rest: Iterable[dict]) -> Iterator[dict]:
    yield first
    yield from rest


def stored_time(moment: datetime | None) -> str | None:
    from django.db import connection

    return None if moment is None else connection.ops.adapt_datetimefield_value(moment)


def delivery_rows(deliveries: list[Delivery], payload: str) -> Iterator[dict]:
    for delivery in deliveries:
        yield {
            "id": delivery.id,
            "delivery_id": delivery.uuid,
            "event": delivery.event,
            "action": delivery.action,
            "hook_id": "471234567",
            "repository": delivery.repository,
            "sender": delivery.sender,
            "ref": delivery.ref,
            "received_at": stored_time(delivery.received_at),
            "payload": payload,
            "status": "accepted",
            "detail": f"{delivery.runs} run(s) queued",
            "attempts": 1,
        }


def definition(repository: str, pipeline: str) -> str:
    steps = [
        {"name": name, "run": f"make {name.replace(' ', '-')}", "timeout": 1800, "env": {},
         "shell": ["bash", "-e", "-o", "pipefail", "-c"]}
        for name in REPOSITORIES[repository][pipeline]
    ]  # fmt: skip
    return json.dumps(
        {"name": pipeline, "steps": steps, "env": {"CI": "true"}, "timeout": 3600,
         "workdir": ".", "checkout": True, "clone_url": f"https://github.com/{repository}.git",
         "keep_workspace": False, "secrets": [], "runs_on": "default", "concurrency": None}
    )  # fmt: skip


def run_rows(runs: list[Run], now: datetime) -> Iterator[dict]:
    definitions = {
        (repository, pipeline): definition(repository, pipeline)
        for repository, pipelines in REPOSITORIES.items()
        for pipeline in pipelines
    }
    for run in runs:
        started, finished = run_times(run)
        yield {
            "id": run.id,
            "delivery": run.delivery,
            "repository": run.repository,
            "pipeline": run.pipeline,
            "event": run.event,
            "sha": run.sha,
            "ref": run.ref,
            "pr_number": run.pr_number,
            "from_fork": run.pr_number is not None and run.pr_number % 9 == 0,
            "definition": definitions[run.repository, run.pipeline],
            "queue": "default",
            "task_id": f"bench-task-{run.id}",
            "created_at": stored_time(run.created_at),
            "started_at": stored_time(started),
            "finished_at": stored_time(finished),
            "status": run.status,
            "detail": run.detail,
            "worker": "ci-1:4242" if started else "",
            "heartbeat_at": stored_time(now if run.status == "running" else None),
        }


def run_times(run: Run) -> tuple[datetime | None, datetime | None]:
    if run.status == "queued" or (run.status == "error" and run.id % 2):
        return None, run.created_at + timedelta(seconds=1) if run.status == "error" else None
    started = run.created_at + timedelta(seconds=2 + run.id % 5)
    finished = started + timedelta(seconds=40 + run.id * 7 % 900)
    return started, None if run.status == "running" else finished


def step_rows(runs: list[Run], sizes: dict[int, int]) -> Iterator[dict]:
    step_id = 0
    for run in runs:
        started, _finished = run_times(run)
        for index, step in enumerate(run.steps):
            step_id += 1
            ran = step.status not in ("pending", "skipped")
            begun = started + timedelta(seconds=20 * index) if ran and started else None
            done = begun + timedelta(seconds=15) if begun and step.status != "running" else None
            yield {
                "id": step_id,
                "run": run.id,
                "index": index,
                "name": step.name,
                "status": step.status,
                "exit_code": step.exit_code,
                "started_at": stored_time(begun),
                "finished_at": stored_time(done),
                "output_bytes": sizes.get(step_id, 0),
                "dropped_bytes": 0,
            }


def chunk_rows(rng: random.Random, runs: list[Run], sizes: dict[int, int]) -> Iterator[dict]:
    """Each step's chunks; `sizes` gets each step's bytes (the text is ASCII)."""
    pool = log_text(rng, 4 * 2**20, colour_share=0.03)
    big = big_log(rng)
    step_id = 0
    for run in runs:
        at = stored_time(run.created_at + timedelta(seconds=30))
        for step in run.steps:
            step_id += 1
            for seq in range(step.chunks):
                if run.id == BIG_RUN_ID:
                    text = big[seq]
                else:
                    start = rng.randrange(len(pool) - 2000)
                    text = pool[start : start + rng.randint(200, 2000)]
                sizes[step_id] = sizes.get(step_id, 0) + len(text)
                yield {"step": step_id, "seq": seq, "text": text, "created_at": at}


def create_superuser() -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser(SUPERUSER, "bench@example.com", None)


def cache_file() -> Path:
    """Where the built database is kept, named after BUILD_VERSION and hookrunner's
    migrations: a new migration means a new build, not a database the code cannot read."""
    migrations = sorted(path.name for path in (ROOT / "runner" / "migrations").glob("0*.py"))
    digest = hashlib.sha256("\n".join(migrations).encode()).hexdigest()[:8]
    name = f"{CACHE_PREFIX}{BUILD_VERSION}-{digest}.sqlite3"
    return Path(tempfile.gettempdir()) / name


def prepare_database(data_dir: Path, rebuild: bool) -> float | None:
    """The database of this run, a fresh copy of the cached build; the build's seconds when
    it was built now, else None."""
    database, cache = data_dir / "hookrunner.sqlite3", cache_file()
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    if cache.exists() and not rebuild:
        started = time.perf_counter()
        shutil.copyfile(cache, database)
        seconds = time.perf_counter() - started
        size = cache.stat().st_size / 2**20
        print(f"database: copied {cache} ({size:.0f} MiB) in {seconds:.1f} s", flush=True)
        return None
    print(f"database: building {RUNS} runs and {CHUNKS} log chunks into {database}", flush=True)
    import django

    django.setup()
    seconds = build(database)
    for old in cache.parent.glob(f"{CACHE_PREFIX}*.sqlite3*"):  # earlier builds, 1.8 GB each
        old.unlink()
    partial = cache.with_name(cache.name + ".partial")
    shutil.copyfile(database, partial)
    partial.replace(cache)
    print(f"  kept as {cache} for the next runs", flush=True)
    return seconds


# --- measuring -----------------------------------------------------------------------------


def logged_in_client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.get(username=SUPERUSER))
    return client


def get(client, url: str):
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: {response.status_code}")
    return response


def measure(client, label: str, url: str, requests: int) -> Measured:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    measured = Measured(label, url)
    for _ in range(WARMUP):
        get(client, url)
    for _ in range(requests):
        started = time.perf_counter()
        get(client, url)
        measured.times.append(time.perf_counter() - started)
    with CaptureQueriesContext(connection) as queries:
        content = get(client, url).content
    measured.queries = len(queries.captured_queries)
    measured.size = len(content)
    runs, steps = content.count(b'name="_selected_action"'), content.count(b'class="hr-step"')
    measured.shown = f"{runs} runs listed" if runs else f"{steps} step(s) shown"
    return measured


def describe(measured: Measured) -> None:
    median, p95 = measured.median_ms, measured.percentile_ms(0.95)
    print(f"{measured.label}: GET {measured.url}")
    print(
        f"  median {median:.1f} ms, p95 {p95:.1f} ms, min {min(measured.times) * 1000:.1f} "
        f"ms over {len(measured.times)} requests ({met(median < TARGET_MS)}: under "
        f"{TARGET_MS:.0f} ms)"
    )
    print(f"  {measured.queries} queries (session and user included), {measured.shown}")
    print(f"  response {measured.size} bytes ({measured.size / 2**20:.2f} MiB)", flush=True)


def profile(client, measured: Measured) -> None:
    """Where the page's time goes: the functions with the most time of their own over 3
    requests (cProfile), then each query of one request, what issued it, and its time when
    run again alone (execute and fetch: SQLite does most of its work while fetching)."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        get(client, measured.url)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:PROFILE_LINES]
    print(f"  profile of {measured.label}, ms per request, own and with callees:")
    for (filename, line, function), (_calls, _primitive, own, cumulative, _callers) in top:
        where = f"{short_path(filename)}:{line}({function})" if line else function
        print(f"    {own * 1000 / 3:7.1f} {cumulative * 1000 / 3:7.1f}  {where}")
    print(f"  queries of {measured.label}, each run again alone, slowest first:")
    timed = [
        (*time_query(sql, params), sql, where)
        for sql, params, where in queries_of(client, measured.url)
    ]
    for seconds, rows, sql, where in sorted(timed, reverse=True):
        print(f"    {seconds * 1000:7.1f} ms {rows:>4} rows  {where}\n{'':>24}{sql[:SQL_SHOWN]}")
    total = sum(seconds for seconds, *_rest in timed) * 1000
    print(
        f"    {total:7.1f} ms in all, of a median page of {measured.median_ms:.1f} ms", flush=True
    )


def queries_of(client, url: str) -> list[tuple[str, Any, str]]:
    """The SQL, parameters and origin of each query of one request of `url`."""
    from django.db import connection

    issued = []

    def record(execute, sql, params, many, context):
        issued.append((sql, params, origin(traceback.extract_stack())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        get(client, url)
    return issued


def origin(stack: list[traceback.FrameSummary]) -> str:
    """The innermost frame of hookrunner's code, else of Django's contrib apps."""
    ours = [frame for frame in stack if frame.filename.startswith(str(ROOT / "runner"))]
    django = [frame for frame in stack if f"django{os.sep}contrib" in frame.filename]
    frame = (ours or django or stack)[-1]
    return f"{short_path(frame.filename)}:{frame.lineno}"


def time_query(sql: str, params: Any) -> tuple[float, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(sql, params)
        rows = len(cursor.fetchall())
        return time.perf_counter() - started, rows


def short_path(filename: str) -> str:
    for prefix in (f"site-packages{os.sep}", f"{ROOT}{os.sep}"):
        if prefix in filename:
            return filename.split(prefix, 1)[1]
    return filename


def sha_prefix_to_search() -> tuple[str, int]:
    """The first 7 characters of the sha of a run half-way through, and its runs."""
    from runner.models import Run as RunRow

    prefix = RunRow.objects.get(pk=RUNS // 2).sha[:7]
    return prefix, RunRow.objects.filter(sha__startswith=prefix).count()


def bench(always_profile: bool) -> dict:
    client = logged_in_client()
    prefix, found = sha_prefix_to_search()
    print(f"searching for sha {prefix}: {found} run(s) of {RUNS} match", flush=True)
    pages = (
        ("run list", "/admin/runner/run/", LIST_REQUESTS),
        ("run list, failed only", "/admin/runner/run/?status__exact=failed", LIST_REQUESTS),
        ("run list, sha search", f"/admin/runner/run/?q={prefix}", LIST_REQUESTS),
        ("10 MiB run page", f"/admin/runner/run/{BIG_RUN_ID}/change/", PAGE_REQUESTS),
    )
    results = []
    for label, url, requests in pages:
        results.append(measure(client, label, url, requests))
        describe(results[-1])
    for measured in results:  # once every page is measured, so as not to disturb them
        if always_profile or measured.median_ms >= TARGET_MS:
            profile(client, measured)
    plain, page = results[0], results[-1]
    return {
        "run_list_ms": round(plain.median_ms, 1),
        "run_list_queries": plain.queries,
        "run_page_ms": round(page.median_ms, 1),
        "run_page_queries": page.queries,
    }


def met(condition: bool) -> str:
    return "target met" if condition else "target NOT met"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="build the database again")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile every page, not only those that miss the target",
    )
    return parser.parse_args()


def main() -> int:
    arguments = parse_arguments()
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    with tempfile.TemporaryDirectory(prefix="hookrunner-bench-admin-") as data_dir:
        configure_own_server(Path(data_dir), runs=0)
        seconds = prepare_database(Path(data_dir), arguments.rebuild)
        import django

        django.setup()
        figures = bench(arguments.profile)
        from django.db import connections

        connections.close_all()
    if seconds is not None:
        print(f"build time {seconds:.1f} s")
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
