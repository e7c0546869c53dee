"""The database of bench/admin.py: built from bench/admin_plan.py's plan, and kept.

A SQLite file with 100,000 runs and 1,000,000 log chunks, built with plain SQL inserts (one
executemany per table, in one transaction, after `migrate`).

The built file is kept in the temporary folder (/tmp/hookrunner-bench-admin-vN-H.sqlite3,
N the BUILD_VERSION below, H a digest of the names of runner/migrations, so a new
migration means a new build; building removes earlier builds) and copied fresh into a
temporary DATA_DIR for every run of the script, so a second run skips the build and no
run measures what another one changed. `--rebuild` builds it again.
"""

import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.admin_plan import (
    BIG_RUN_ID,
    CHUNKS,
    REPOSITORIES,
    RUNS,
    SEED,
    Delivery,
    Run,
    big_log,
    log_text,
    plan,
)
from bench.served import PAYLOAD_FILE

ROOT = Path(__file__).resolve().parent.parent

BUILD_VERSION = 1  # change it whenever the data built changes (here or in bench/admin_plan.py)
CACHE_PREFIX = "hookrunner-bench-admin-v"
SUPERUSER = "bench"


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
