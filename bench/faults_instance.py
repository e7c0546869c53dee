"""bench/faults.py's side of a served instance: posting signed deliveries and reading
/healthz, its PostgreSQL database (chosen, emptied, made unavailable), and the scenarios
of a database blip while a step runs (issue 12, item 1) and of a delivery stored but
never processed (item 4)."""

import http.client
import json
import os
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.common import met
from bench.faults_payloads import fixture
from bench.served import Target
from runner.config.github import sign

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432"
DEFAULT_DATABASE = "hr_bench_faults"
NEVER_USED = ("test", "test_test")  # the test suite's databases
ANSWER_TIMEOUT_SECONDS = 30.0
BLIP_REFUSE_SECONDS = 3.0


# --- talking to the instance -----------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    delivery_id: str
    status: int  # 0: no answer (connection broken, timed out)
    content_type: str
    body: bytes
    ms: float

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def new_id(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(8)}"


def post(
    target: Target,
    event: str,
    body: bytes,
    delivery_id: str,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
) -> Answer:
    """POST one signed delivery on a fresh connection; the answer as read."""
    sent = {
        "User-Agent": "GitHub-Hookshot/bench",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": sign(target.secret, body),
        **(headers or {}),
    }
    if content_type is not None:
        sent["Content-Type"] = content_type
    connection = http.client.HTTPConnection(
        target.host, target.port, timeout=ANSWER_TIMEOUT_SECONDS
    )
    started = time.perf_counter()
    try:
        connection.request("POST", target.path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read()
        status, kind = response.status, response.getheader("Content-Type", "")
    except (OSError, http.client.HTTPException) as error:
        status, kind, data = 0, "", f"{type(error).__name__}: {error}".encode()
    finally:
        connection.close()
    return Answer(delivery_id, status, kind, data, (time.perf_counter() - started) * 1000)


def healthz(target: Target) -> dict:
    connection = http.client.HTTPConnection(target.host, target.port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        return json.loads(connection.getresponse().read())
    except (OSError, http.client.HTTPException, ValueError) as error:
        return {"pipelines": f"no answer: {error}"}
    finally:
        connection.close()


def push_body(ref: str) -> bytes:
    payload = fixture("push__branch")
    payload["ref"] = ref
    return json.dumps(payload).encode()


def wait_for(condition, timeout: float, every: float = 0.05):
    """The first true value of condition() within `timeout` seconds, else None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    return None


def log_text(log: Path) -> str:
    return log.read_text(errors="replace")


# --- the database ----------------------------------------------------------------------


def admin_connection() -> psycopg.Connection:
    """A connection to the server's `postgres` database (a database cannot refuse
    connections to itself)."""
    from django.db import connection

    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
        user=settings["USER"] or "postgres", password=settings["PASSWORD"] or None,
        dbname="postgres", autocommit=True,
    )  # fmt: skip


def choose_database() -> tuple[str | None, str]:
    """(the server URL of a database this script creates, or None), and DATABASE_URL."""
    given = os.environ.get("DATABASE_URL")
    if not given:
        return DEFAULT_SERVER, f"{DEFAULT_SERVER}/{DEFAULT_DATABASE}"
    parts = urllib.parse.urlsplit(given)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit("bench/faults.py needs PostgreSQL: DATABASE_URL=postgres://...")
    if parts.path.strip("/") in NEVER_USED:
        raise SystemExit(f"{parts.path.strip('/')} is the test suite's database; name another")
    return None, given


def create_database(server: str) -> None:
    name = sql.Identifier(DEFAULT_DATABASE)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(name))


def drop_database(server: str) -> None:
    name = sql.Identifier(DEFAULT_DATABASE)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def refuse_unless_empty() -> None:
    from runner.models import Delivery

    if Delivery.objects.exists():
        raise SystemExit("the database DATABASE_URL names holds deliveries; give an empty one")


def delete_everything_made(started) -> None:
    """What the bench left in a given database: deliveries (with their runs, steps and
    output), tasks, refused requests, and the workers seen since it started."""
    from django_tasks_db.models import DBTaskResult

    from runner.models import Delivery, DroppedRejections, RejectedRequest, WorkerSeen

    Delivery.objects.filter(original__isnull=False).delete()
    Delivery.objects.all().delete()
    DBTaskResult.objects.all().delete()
    RejectedRequest.objects.all().delete()
    DroppedRejections.objects.all().delete()
    WorkerSeen.objects.filter(seen_at__gte=started).delete()


# --- 1. a database blip while a step runs ----------------------------------------------


def step_output(run_id: int) -> str:
    from runner.models import LogChunk

    chunks = LogChunk.objects.filter(step__run_id=run_id).order_by("step__pk", "seq")
    return "".join(chunks.values_list("text", flat=True))


def database_away(seconds: float) -> int:
    """Refuse new connections to the database for `seconds` and terminate every backend
    of it but this process's own; how many were terminated."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own,) = cursor.fetchone()
    database = sql.Identifier(name)
    with admin_connection() as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(database))
        try:
            terminated = admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> %s",
                [name, own],
            ).fetchone()[0]
            time.sleep(seconds)
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(database))
    return terminated


def db_blip(target: Target, worker, log: Path) -> dict:
    from runner.models import Run

    print("1. database blip while a step runs (item 1)", flush=True)
    answer = post(target, "push", push_body("refs/heads/blip"), new_id("blip"))
    if answer.status != 202:
        raise SystemExit(f"the blip's push was answered {answer.status}: {answer.body[:300]!r}")
    (run_id,) = answer.json()["runs"]
    if not wait_for(lambda: step_output(run_id) == "before\n", 30):
        raise SystemExit(f"run {run_id}'s step never printed its first line")
    log_before = len(log_text(log))
    terminated = database_away(BLIP_REFUSE_SECONDS)
    print(
        f"  run {run_id}'s step running: terminated {terminated} backends of the database, "
        f"new connections refused for {BLIP_REFUSE_SECONDS:g} s",
        flush=True,
    )
    finished = Run.objects.filter(pk=run_id, finished_at__isnull=False)
    wait_for(lambda: finished.exists() or worker.poll() is not None, 90, 0.1)
    run = Run.objects.get(pk=run_id)
    output = step_output(run_id)
    alive = worker.poll() is None
    after = post(target, "push", push_body("refs/heads/idle"), new_id("blip-after"))
    said = log_text(log)[log_before:]
    noticed = "database unavailable" in said and "database back after" in said
    print(
        f"  run ended {run.status} ({run.detail}) ({met(run.status == 'succeeded')}: "
        f"succeeded); output {output!r}"
    )
    print(f"  worker alive: {alive} ({met(alive)}); its log says it waited: {noticed}")
    print(f"  a push after the blip answered {after.status} in {after.ms:.0f} ms", flush=True)
    return {
        "db_blip_run_status": run.status,
        "db_blip_output_complete": output == "before\nafter\n",
        "db_blip_worker_alive": alive,
        "db_blip_worker_waited": noticed,
        "db_blip_backends_terminated": terminated,
        "db_blip_answer_after": after.status,
    }


# --- 2. a delivery stored, never processed ---------------------------------------------


def store_received(delivery_id: str, payload: dict, ago: timedelta) -> int:
    """A push stored `received` as the receiver stores it, `ago` before now, unprocessed."""
    from django.db import transaction
    from django.utils import timezone

    from runner.models import Delivery

    with transaction.atomic():
        pk = Delivery.objects.insert_received(
            payload=payload,
            delivery_id=delivery_id,
            event="push",
            action="",
            hook_id="",
            repository=payload["repository"]["full_name"],
            sender=payload["sender"]["login"],
            ref=payload["ref"],
        )
        Delivery.objects.filter(pk=pk).update(received_at=timezone.now() - ago)
    return pk


def stranded(target: Target) -> dict:
    from runner.models import Delivery, Run

    print("2. a delivery stored and never processed (item 4)", flush=True)
    payload = fixture("push__branch")
    payload["ref"] = "refs/heads/stranded"
    pk = store_received(new_id("stranded"), payload, timedelta(minutes=2))
    started = time.monotonic()
    delivery = Delivery.objects.filter(pk=pk)
    wait_for(lambda: delivery.exclude(status="received").exists(), 30, 0.05)
    seconds = time.monotonic() - started
    stored = delivery.get()
    runs = list(Run.objects.filter(delivery_id=pk))
    processed = stored.status == "accepted" and len(runs) > 0
    ran = Run.objects.filter(delivery_id=pk, finished_at__isnull=False)
    wait_for(lambda: ran.count() == len(runs), 30, 0.1)
    statuses = sorted(run.status for run in Run.objects.filter(delivery_id=pk))
    print(
        f"  stored 2 minutes ago as received: {stored.status} after {seconds:.1f} s "
        f"({stored.detail}), runs {statuses} ({met(processed)}: accepted with its runs)"
    )
    # A redelivery of one still being processed must not be a 2xx (GitHub would stop).
    again = payload | {"ref": "refs/heads/idle"}
    repeat_id = new_id("repeat")
    store_received(repeat_id, again, timedelta(0))
    answer = post(target, "push", json.dumps(again).encode(), repeat_id)
    reply = answer.json() or {}
    repeat_ok = 300 <= answer.status < 600
    print(
        f"  a repeat of a delivery being processed: {answer.status} {reply.get('status')} "
        f"({met(repeat_ok)}: not a 2xx)",
        flush=True,
    )
    return {
        "stranded_processed": processed,
        "stranded_seconds": round(seconds, 1),
        "stranded_runs": statuses,
        "stranded_repeat_http": answer.status,
    }
