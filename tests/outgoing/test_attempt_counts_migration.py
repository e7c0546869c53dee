"""Migration 0012 fills Outgoing's attempt counts and outcomes for rows stored before it:
the database is taken back to 0011, rows are stored as they were then, and migrated."""

from datetime import datetime
from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from runner.models import Outgoing
from tests.rows import make_run

BEFORE = ("runner", "0011_runs_wait_for_needs_or_turn")
AT = "2026-11-30T10:00:00.123456+00:00"
LATER = "2026-11-30T10:05:00+00:00"


def entry(status: int | None, error: str = "", at: str = AT) -> dict:
    """An attempt as stored before 0012: no outcome."""
    return {"at": at, "status": status, "error": error}


@pytest.fixture
def stored_before_0012():
    """Store rows as of 0011 with `store(apps)`, then migrate to the latest; the database is
    left at the latest migration whatever happens."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()

    def migrate(store) -> None:
        executor.migrate([BEFORE])
        store(executor.loader.project_state([BEFORE]).apps)
        executor.loader.build_graph()
        executor.migrate(latest)

    try:
        yield migrate
    finally:
        executor.loader.build_graph()
        executor.migrate(latest)


@pytest.mark.django_db(transaction=True)
def test_stored_attempts_are_counted_and_given_outcomes(stored_before_0012):
    run = make_run()
    rows = {
        "sent after a 502 and a rate limit": [
            entry(502, "HTTP 502: Bad Gateway"),
            entry(429, "rate limited (HTTP 429); next attempt in 60s"),
            entry(201, at=LATER),
        ],
        "gave up after failures": [
            entry(None, "timed out after 10s"),
            entry(408, "HTTP 408"),
            entry(503, "HTTP 503: Service Unavailable", at=LATER),
        ],
        "refused": [entry(422, "HTTP 422: Validation Failed", at=LATER)],
        "redirected": [entry(301, "HTTP 301, redirected to https://x (not followed)", at=LATER)],
        "never tried": [],
    }

    def store(apps) -> None:
        old = apps.get_model("runner", "Outgoing")
        for what, attempts in rows.items():
            old.objects.create(
                run_id=run.pk, kind="notification", url=what, body={}, attempts=attempts
            )

    stored_before_0012(store)
    migrated = {row.url: row for row in Outgoing.objects.all()}

    def summary(what: str) -> tuple:
        row = migrated[what]
        return [a["outcome"] for a in row.attempts], row.failures, row.rate_limited

    assert summary("sent after a 502 and a rate limit") == (["retry", "rate_limited", "ok"], 1, 1)
    assert summary("gave up after failures") == (["retry", "retry", "retry"], 3, 0)
    assert summary("refused") == (["give_up"], 1, 0)
    assert summary("redirected") == (["give_up"], 1, 0)
    assert summary("never tried") == ([], 0, 0)
    assert migrated["never tried"].last_attempt_at is None
    assert {row.last_attempt_at for what, row in migrated.items() if what != "never tried"} == {
        datetime.fromisoformat(LATER)
    }
    kept = migrated["sent after a 502 and a rate limit"].attempts[1]
    assert kept == {**rows["sent after a 502 and a rate limit"][1], "outcome": "rate_limited"}


@pytest.mark.django_db
def test_the_back_fill_keeps_outcomes_already_recorded():
    """Run again (or over a row recorded since), it changes nothing."""
    back_fill = import_module("runner.migrations.0012_outgoing_attempt_counts").count_attempts
    recorded = [
        {**entry(403, "rate limited (HTTP 403); next attempt in 60s"), "outcome": "rate_limited"},
        {**entry(502, "HTTP 502: Bad Gateway", at=LATER), "outcome": "retry"},
    ]
    row = Outgoing.objects.create(
        run=make_run(), kind="notification", url="u", body={}, attempts=recorded
    )
    back_fill(django_apps, connection.schema_editor())
    back_fill(django_apps, connection.schema_editor())
    row.refresh_from_db()
    assert (row.attempts, row.failures, row.rate_limited) == (recorded, 1, 1)
    assert row.last_attempt_at == datetime.fromisoformat(LATER)
