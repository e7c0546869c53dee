"""`manage.py purge`: retention of deliveries, runs and their output, refusals, tasks,
workers and workspaces, a short transaction at a time."""

import fcntl
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.models import (
    Delivery,
    DroppedRejections,
    LogChunk,
    Redaction,
    RejectedRequest,
    Run,
    Step,
    WorkerSeen,
)
from runner.ops import purge, purge_batches
from runner.runs.queue import queue_execution
from tests.rows import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def retention(settings, tmp_path):
    settings.DELIVERY_RETENTION = 7
    settings.RUN_RETENTION = 90
    settings.WORKSPACES_DIR = tmp_path / "workspaces"
    settings.MIRRORS_DIR = tmp_path / "mirrors"


def ago(days: float):
    return timezone.now() - timedelta(days=days)


def delivery(days: float, status: str = "accepted", original: Delivery | None = None):
    row = Delivery.objects.create(
        delivery_id=original.delivery_id if original else str(uuid.uuid4()),
        event="push",
        payload={"ref": "refs/heads/main"},
        status=status,
        original=original,
    )
    Delivery.objects.filter(pk=row.pk).update(received_at=ago(days))
    return row


def run(
    of: Delivery,
    days: float,
    status: str = "succeeded",
    rerun_of: Run | None = None,
    steps: int = 1,
    chunks: int = 2,
    kept_workspace: str = "",
) -> Run:
    row = make_run(of, status=status, rerun_of=rerun_of, kept_workspace=kept_workspace)
    Run.objects.filter(pk=row.pk).update(created_at=ago(days))
    for index in range(steps):
        step = Step.objects.create(run=row, index=index, name=f"step {index}")
        LogChunk.objects.bulk_create(
            LogChunk(step=step, seq=seq, text=f"line {seq}\n") for seq in range(chunks)
        )
    return row


def purged(**options) -> str:
    out = []
    call_command("purge", stdout=_Lines(out), **options)
    return "".join(out)


class _Lines:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def write(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        pass


def exists(row) -> bool:
    return type(row).objects.filter(pk=row.pk).exists()


# Runs and their deliveries.


def test_an_old_finished_run_goes_with_its_steps_output_and_delivery():
    old = delivery(100)
    gone = run(old, 100, steps=2, chunks=3)
    kept = run(delivery(100), 89, steps=1, chunks=1)
    out = purged()
    assert not exists(gone)
    assert not exists(old)
    assert not Step.objects.filter(run_id=gone.pk).exists()
    assert LogChunk.objects.count() == 1
    assert exists(kept)
    assert "deliveries: 1 deleted\nruns: 1 deleted\nsteps: 2 deleted\nlog chunks: 6 deleted" in out


def test_a_delivery_stays_past_delivery_retention_while_a_run_of_it_stays():
    old = delivery(30)
    kept = run(old, 30)
    purged()
    assert exists(old)
    assert exists(kept)


def test_deliveries_without_runs_go_after_delivery_retention():
    ping, ignored, failed = delivery(8, "ignored"), delivery(8, "ignored"), delivery(8, "failed")
    recent = delivery(6, "ignored")
    purged()
    assert not any(exists(row) for row in (ping, ignored, failed))
    assert exists(recent)


def test_duplicates_go_after_delivery_retention_and_an_original_stays_while_a_repeat_does():
    original = delivery(20, "ignored")
    old_repeat = delivery(10, "duplicate", original=original)
    new_repeat = delivery(2, "duplicate", original=original)
    lone = delivery(20, "ignored")
    lone_repeat = delivery(9, "duplicate", original=lone)
    out = purged()
    assert exists(original)
    assert exists(new_repeat)
    assert not exists(old_repeat)
    assert not exists(lone)
    assert not exists(lone_repeat)
    assert "deliveries: 3 deleted" in out


@pytest.mark.parametrize("status", ["waiting", "queued", "running"])
def test_a_run_that_has_not_ended_stays_whatever_its_age(status):
    old = delivery(200)
    active = run(old, 200, status=status)
    out = purged()
    assert exists(active)
    assert exists(old)
    assert LogChunk.objects.filter(step__run=active).count() == 2
    assert "runs: 0 deleted (1 older kept: not finished, or re-run by a kept run)" in out


@pytest.mark.parametrize("status", ["failed", "timed_out", "cancelled", "error", "skipped"])
def test_an_old_run_goes_whatever_way_it_ended(status):
    gone = run(delivery(100), 100, status=status)
    purged()
    assert not exists(gone)


def test_the_live_deployment_of_each_environment_stays_however_old():
    older, live, failed_after = (run(delivery(300), days) for days in (300, 200, 100))
    Run.objects.filter(pk__in=[older.pk, live.pk, failed_after.pk]).update(environment="production")
    Run.objects.filter(pk=failed_after.pk).update(status="failed")
    purged()
    assert (exists(older), exists(live), exists(failed_after)) == (False, True, False)
    assert exists(live.delivery)


def test_a_chain_of_reruns_stays_when_its_newest_run_stays():
    first = run(delivery(200), 200)
    second = run(first.delivery, 150, rerun_of=first)
    third = run(first.delivery, 10, rerun_of=second)
    out = purged()
    assert all(exists(row) for row in (first, second, third, first.delivery))
    assert LogChunk.objects.filter(step__run=first).count() == 2
    assert "(2 older kept: not finished, or re-run by a kept run)" in out


def test_a_chain_of_reruns_stays_when_its_newest_run_is_running():
    first = run(delivery(200), 200)
    second = run(first.delivery, 150, rerun_of=first, status="running")
    purged()
    assert exists(first)
    assert exists(second)


def test_a_chain_of_old_reruns_goes_together_with_its_delivery():
    first = run(delivery(200), 200)
    second = run(first.delivery, 150, rerun_of=first)
    third = run(first.delivery, 100, rerun_of=second)
    purged()
    assert not any(exists(row) for row in (first, second, third, first.delivery))


def test_a_rerun_chain_is_followed_across_pages(monkeypatch):
    monkeypatch.setattr(purge, "RUN_BATCH", 1)
    old_chain = [run(delivery(300), 300)]
    for days in (250, 200, 150):
        old_chain.append(run(old_chain[0].delivery, days, rerun_of=old_chain[-1]))
    kept_chain = [run(delivery(300), 300)]
    for days in (250, 200, 5):
        kept_chain.append(run(kept_chain[0].delivery, days, rerun_of=kept_chain[-1]))
    out = purged()
    assert not any(exists(row) for row in old_chain)
    assert all(exists(row) for row in kept_chain)
    assert "runs: 4 deleted (3 older kept" in out


def test_a_run_rerun_after_the_plan_was_made_stays(monkeypatch):
    """The deleting transaction checks again: a re-run made while the purge runs keeps the
    run it repeats (here, the plan is made not to know about it)."""
    first = run(delivery(200), 200)
    rerun = run(first.delivery, 0, rerun_of=first, steps=0)
    monkeypatch.setattr(purge._Purge, "runs_kept_for_reruns", lambda self: set())
    purged()
    assert exists(first)
    assert exists(rerun)
    assert exists(first.delivery)


def test_log_chunks_go_in_batches_of_chunk_batch_rows(monkeypatch):
    monkeypatch.setattr(purge_batches, "CHUNK_BATCH", 5)
    gone = [run(delivery(100), 100, steps=2, chunks=6) for _ in range(2)]
    kept = run(delivery(10), 10, steps=1, chunks=3)
    table = LogChunk._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        out = purged()
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE") and table in q["sql"]]
    # 24 chunks in 5 ranges of at most 5 rows; the runs' own DELETE then finds none left.
    ranges = [sql for sql in deletes if ">=" in sql]
    assert len(ranges) == 5
    assert len(deletes) == 6
    assert not any(exists(row) for row in gone)
    assert LogChunk.objects.filter(step__run=kept).count() == 3
    assert "log chunks: 24 deleted" in out


def test_log_chunks_go_in_batches_of_about_chunk_bytes_of_text(monkeypatch):
    monkeypatch.setattr(purge_batches, "CHUNK_BYTES", 20)
    gone = run(delivery(100), 100, steps=1, chunks=12)
    # "line N\n": 7 bytes a chunk as the step counted them; 2 chunks make 14, 3 make 21.
    Step.objects.filter(run=gone).update(output_bytes=7 * 12 + 100, dropped_bytes=100)
    table = LogChunk._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        purged()
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE") and table in q["sql"]]
    assert len([sql for sql in deletes if ">=" in sql]) == 6
    assert not LogChunk.objects.exists()


def test_chunk_ranges_guess_sizes_from_each_step_and_assume_the_largest_when_unknown(
    monkeypatch,
):
    monkeypatch.setattr(purge_batches, "CHUNK_BYTES", 10)
    monkeypatch.setattr(purge_batches, "CHUNK_BATCH", 3)
    chunks = [(1, 7), (2, 7), (3, 7), (4, 7), (5, 8), (6, 7), (7, 9), (8, 9)]
    # Step 7: 1 byte a chunk (rows bound it); 8: unknown (lost worker); 9: 5 bytes a chunk.
    ranges = list(purge_batches.chunk_ranges(chunks, {7: 5, 8: None, 9: 10}))
    assert ranges == [(1, 3), (4, 4), (5, 5), (6, 7), (8, 8)]


def test_every_batch_is_its_own_transaction(monkeypatch):
    monkeypatch.setattr(purge_batches, "CHUNK_BATCH", 5)
    monkeypatch.setattr(purge, "ROW_BATCH", 2)
    entered = []
    real = purge_batches.write_transaction

    def counting():
        entered.append(1)
        return real()

    monkeypatch.setattr(purge_batches, "write_transaction", counting)
    run(delivery(100), 100, steps=1, chunks=12)
    for _ in range(3):
        RejectedRequest.objects.create(http_status=401, reason="bad signature")
    RejectedRequest.objects.update(received_at=ago(8))
    out = purged()
    # 3 chunk batches, the run, the delivery, 2 batches of rejections.
    assert len(entered) == 7
    assert re.search(r"took \d+\.\d\d s in 7 transactions, the longest \d+\.\d ms", out)


# Everything else.


def test_refusals_tasks_and_workers_go_after_delivery_retention():
    old_refusal = RejectedRequest.objects.create(http_status=401, reason="bad signature")
    RejectedRequest.objects.filter(pk=old_refusal.pk).update(received_at=ago(8))
    new_refusal = RejectedRequest.objects.create(http_status=401, reason="bad signature")
    old_minute = DroppedRejections.objects.create(minute=ago(8), count=3)
    new_minute = DroppedRejections.objects.create(minute=ago(1), count=3)
    tasks = {name: queue_execution("default") for name in ("done", "failed", "new", "r", "w")}
    DBTaskResult.objects.filter(id=tasks["done"]).update(status="SUCCESSFUL", finished_at=ago(8))
    DBTaskResult.objects.filter(id=tasks["failed"]).update(status="FAILED", finished_at=ago(8))
    DBTaskResult.objects.filter(id=tasks["new"]).update(status="SUCCESSFUL", finished_at=ago(6))
    DBTaskResult.objects.filter(id=tasks["r"]).update(status="RUNNING", enqueued_at=ago(30))
    DBTaskResult.objects.filter(id=tasks["w"]).update(enqueued_at=ago(30))
    WorkerSeen.objects.create(name="gone:1", queues="*", seen_at=ago(8))
    WorkerSeen.objects.create(name="here:2", queues="*", seen_at=ago(6))
    redaction = Redaction.objects.create(done_by="admin", scope="all runs")
    Redaction.objects.filter(pk=redaction.pk).update(done_at=ago(1000))
    out = purged()
    assert list(RejectedRequest.objects.all()) == [new_refusal]
    assert list(DroppedRejections.objects.all()) == [new_minute]
    assert not exists(old_minute)
    remaining = {str(pk) for pk in DBTaskResult.objects.values_list("id", flat=True)}
    assert remaining == {tasks["new"], tasks["r"], tasks["w"]}
    assert list(WorkerSeen.objects.values_list("name", flat=True)) == ["here:2"]
    assert exists(redaction)
    assert "rejections: 1 deleted, and 1 minute of dropped-rejection counts" in out
    assert "tasks: 2 deleted\nworkers: 1 deleted" in out
    assert "redactions: kept, always (the audit trail of redactions)" in out


# Workspaces and mirrors.


def workspace(run_id: int, kept: bool = False) -> Path:
    from django.conf import settings

    root = Path(settings.WORKSPACES_DIR) / f"run-{run_id}"
    (root / "workspace").mkdir(parents=True)
    (root / "workspace" / "README").write_text("kept\n")
    (root / "event.json").write_text("{}")
    return root


def test_stale_workspaces_are_removed_and_kept_and_active_ones_stay(settings):
    ended = run(delivery(1), 1)
    kept = run(delivery(1), 1)
    running = run(delivery(1), 1, status="running")
    old_kept = run(delivery(100), 100)
    directories = {
        "ended": workspace(ended.pk),
        "kept": workspace(kept.pk),
        "running": workspace(running.pk),
        "old kept": workspace(old_kept.pk),
        "no such run": workspace(old_kept.pk + 1000),
    }
    for row, name in ((kept, "kept"), (old_kept, "old kept")):
        Run.objects.filter(pk=row.pk).update(kept_workspace=str(directories[name] / "workspace"))
    unrelated = Path(settings.WORKSPACES_DIR) / "notes"
    unrelated.mkdir()
    out = purged()
    assert not directories["ended"].exists()
    assert directories["kept"].exists()
    assert directories["running"].exists()
    assert not directories["old kept"].exists()
    assert not directories["no such run"].exists()
    assert unrelated.exists()
    assert "workspaces: 3 removed" in out


def test_a_purged_runs_kept_workspace_goes_with_it_wherever_it_is(tmp_path):
    elsewhere = tmp_path / "old-workspaces" / "run-0"
    gone = run(delivery(100), 100)
    elsewhere = elsewhere.with_name(f"run-{gone.pk}")
    (elsewhere / "workspace").mkdir(parents=True)
    Run.objects.filter(pk=gone.pk).update(kept_workspace=str(elsewhere / "workspace"))
    out = purged()
    assert not elsewhere.exists()
    assert elsewhere.parent.exists()
    assert "workspaces: 1 removed" in out


def test_interrupted_mirror_clones_go_when_a_day_old_and_unlocked(settings):
    mirrors = Path(settings.MIRRORS_DIR)
    old, fresh, locked, mirror = (
        mirrors / name for name in ("a.git.partial", "b.git.partial", "c.git.partial", "d.git")
    )
    for path in (old, fresh, locked, mirror):
        (path / "objects").mkdir(parents=True)
    day_and_more = time.time() - 25 * 3600
    for path in (old, locked, mirror):
        os.utime(path, (day_and_more, day_and_more))
    with (mirrors / "c.git.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        out = purged()
    assert not old.exists()
    assert fresh.exists()
    assert locked.exists()
    assert mirror.exists()
    assert "workspaces: 0 removed, and 1 interrupted mirror clone" in out


# Dry run and report.


@pytest.fixture
def history(settings):
    """A bit of everything that goes and everything that stays."""
    old = run(delivery(100), 100, steps=2, chunks=3)
    run(old.delivery, 95, rerun_of=old)
    chained = run(delivery(100), 100)
    run(chained.delivery, 3, rerun_of=chained)
    run(delivery(100), 100, status="running")
    delivery(8, "ignored")
    delivery(3, "ignored")
    RejectedRequest.objects.create(http_status=401, reason="bad signature")
    RejectedRequest.objects.update(received_at=ago(8))
    DroppedRejections.objects.create(minute=ago(9), count=1)
    WorkerSeen.objects.create(name="gone:1", queues="*", seen_at=ago(8))
    task = queue_execution("default")
    DBTaskResult.objects.filter(id=task).update(status="SUCCESSFUL", finished_at=ago(8))
    workspace(old.pk)
    ended = run(delivery(1), 1, steps=0)
    workspace(ended.pk)
    partial = Path(settings.MIRRORS_DIR) / "x.git.partial"
    partial.mkdir(parents=True)
    os.utime(partial, (time.time() - 2 * 86400,) * 2)


def counts() -> dict[str, int]:
    models = (Delivery, Run, Step, LogChunk, RejectedRequest, DroppedRejections, DBTaskResult)
    return {model.__name__: model.objects.count() for model in (*models, WorkerSeen)}


def directories(settings) -> list[str]:
    return sorted(
        str(path.relative_to(settings.WORKSPACES_DIR.parent))
        for root in (settings.WORKSPACES_DIR, settings.MIRRORS_DIR)
        for path in Path(root).iterdir()
    )


def test_dry_run_counts_what_would_go_and_changes_nothing(history, settings):
    before, on_disk = counts(), directories(settings)
    dry = purged(dry_run=True)
    assert counts() == before
    assert directories(settings) == on_disk
    real = purged()
    assert dry.startswith("deliveries from before")
    assert "dry run: nothing was deleted\n" in dry
    strip = re.compile(r"^(took .*|dry run.*)$\n?", re.MULTILINE)
    assert strip.sub("", dry).replace("to delete", "deleted").replace(
        "to remove", "removed"
    ) == strip.sub("", real)


def test_the_report_says_what_went_line_by_line(history):
    out = purged()
    lines = out.splitlines()
    assert re.fullmatch(
        r"deliveries from before \d{4}-\d\d-\d\d \d\d:\d\d UTC \(DELIVERY_RETENTION=7 days\), "
        r"runs from before \d{4}-\d\d-\d\d \d\d:\d\d UTC \(RUN_RETENTION=90 days\)",
        lines[0],
    )
    assert lines[1:-1] == [
        "deliveries: 2 deleted",
        "runs: 2 deleted (2 older kept: not finished, or re-run by a kept run)",
        "steps: 3 deleted",
        "log chunks: 8 deleted",
        "rejections: 1 deleted, and 1 minute of dropped-rejection counts",
        "tasks: 1 deleted",
        "workers: 1 deleted",
        "workspaces: 2 removed, and 1 interrupted mirror clone",
        "redactions: kept, always (the audit trail of redactions)",
    ]
    assert re.fullmatch(r"took \d+\.\d\d s in \d+ transactions, the longest \d+\.\d ms", lines[-1])


def test_a_second_purge_finds_nothing(history):
    purged()
    out = purged()
    assert "deliveries: 0 deleted\nruns: 0 deleted" in out
    assert "workspaces: 0 removed, and 0 interrupted mirror clones" in out


@pytest.mark.parametrize("name", ["DELIVERY_RETENTION", "RUN_RETENTION"])
def test_a_retention_under_a_day_is_refused(settings, name):
    setattr(settings, name, 0)
    with pytest.raises(CommandError, match=f"{name} is 0; it needs 1 day or more"):
        purged()


def test_retention_defaults_are_a_week_and_ninety_days():
    env = {k: v for k, v in os.environ.items() if not k.endswith("_RETENTION")}
    code = "from runner import settings as s; print(s.DELIVERY_RETENTION, s.RUN_RETENTION)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["7", "90"]
