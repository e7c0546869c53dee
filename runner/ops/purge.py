"""Retention: what `manage.py purge` deletes, a short transaction at a time.

- A run goes RUN_RETENTION days after it was created, with its steps, output, outgoing
  requests and kept workspace, once it has ended (never while waiting, queued or running),
  unless a run that stays re-runs it: the run a kept re-run repeats stays, and so does the
  one that run repeats, along the whole chain. The live deployment of each environment
  (its last run that succeeded) stays however old: it says what runs there, and a
  rollback goes back to it.
- A delivery goes DELIVERY_RETENTION days after it arrived, once no run of it stays (a
  re-run and GITHUB_EVENT_PATH need its payload): deliveries without runs (pings, ignored
  events, duplicates, failures) after DELIVERY_RETENTION, the others with their last run.
  An original stays while a newer repeat of it does (deleting it would delete the repeat).
- Refused requests, dropped-rejection counts, finished tasks (a run never needs its task
  once that has finished; a ready or running task is never touched) and workers not seen
  go after DELIVERY_RETENTION. Redactions never: they are the audit trail of redactions.
- Workspaces: a WORKSPACES_DIR/run-<id> directory goes once its run has ended (or no
  longer exists) unless the run kept it (keep_workspace); so does a purged run's kept
  workspace. A `*.partial` mirror in MIRRORS_DIR (an interrupted first clone) goes when a
  day old and its mirror's lock is free.

Every delete is a transaction of its own: CHUNK_BATCH log chunks or CHUNK_BYTES of their
text, a page of runs with their steps, DELIVERY_BATCH deliveries, ROW_BATCH other rows
(how batches are made and paced, and what they cost: runner.ops.purge_batches). Runs go
in pages of RUN_BATCH, newest first (a re-run is newer than the run it repeats): their
chunks first, in primary-key ranges, then the runs, the page's rules checked again in the
deleting transaction (under row locks on PostgreSQL). A run re-run in the milliseconds
between its chunks going and that check stays, without output.

This module holds the rules and the Report; runner.ops.purge_batches the batching.
"""

import fcntl
import logging
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.config.text import counted
from runner.models import (
    Delivery,
    DroppedRejections,
    LogChunk,
    RejectedRequest,
    Run,
    Step,
    WorkerSeen,
)
from runner.ops.purge_batches import Transactions, batches, chunk_ranges, pages

logger = logging.getLogger(__name__)

# A run in any other status (waiting, queued, running) is never deleted.
ENDED = sorted(Run.ENDED)
FINISHED_TASK = ("SUCCESSFUL", "FAILED")
# Runs looked at, and deleted with their steps, per page. Log chunks per transaction:
# CHUNK_BATCH and CHUNK_BYTES in runner.ops.purge_batches.
RUN_BATCH = 100
# Deliveries per transaction (a push payload is 5 to 30 KB; deleting 1,000 of 5.5 KB
# took 45 ms on SQLite), and rows of everything else.
DELIVERY_BATCH = 200
ROW_BATCH = 1000
# Ids per `IN (...)` when looking up lists of any length.
LOOKUP_BATCH = 500
PARTIAL_MIRROR_AGE = timedelta(days=1)
WORKSPACE_NAME = re.compile(r"run-([0-9]+)")


@dataclass(frozen=True)
class Cutoffs:
    deliveries: datetime
    runs: datetime

    @classmethod
    def from_settings(cls, now: datetime | None = None) -> "Cutoffs":
        now = now or timezone.now()
        return cls(
            deliveries=now - timedelta(days=settings.DELIVERY_RETENTION),
            runs=now - timedelta(days=settings.RUN_RETENTION),
        )


@dataclass
class Report:
    """What went (or, in a dry run, would go)."""

    dry_run: bool
    deliveries: int = 0
    runs: int = 0
    # Runs past RUN_RETENTION that stay: queued, running, or repeated by a run that stays.
    runs_held: int = 0
    steps: int = 0
    chunks: int = 0
    rejections: int = 0
    dropped_minutes: int = 0
    tasks: int = 0
    workers: int = 0
    workspaces: int = 0
    partial_mirrors: int = 0
    not_removed: list[str] = field(default_factory=list)
    transactions: int = 0
    longest_transaction: float = 0.0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        delete, remove = ("to delete", "to remove") if self.dry_run else ("deleted", "removed")
        runs = f"runs: {self.runs} {delete}"
        if self.runs_held:
            runs += f" ({self.runs_held} older kept: not finished, or re-run by a kept run)"
        lines = ["dry run: nothing was deleted"] if self.dry_run else []
        lines += [
            f"deliveries: {self.deliveries} {delete}",
            runs,
            f"steps: {self.steps} {delete}",
            f"log chunks: {self.chunks} {delete}",
            f"rejections: {self.rejections} {delete}, and "
            f"{counted(self.dropped_minutes, 'minute')} of dropped-rejection counts",
            f"tasks: {self.tasks} {delete}",
            f"workers: {self.workers} {delete}",
            f"workspaces: {self.workspaces} {remove}, and "
            f"{counted(self.partial_mirrors, 'interrupted mirror clone')}",
        ]
        lines += [f"could not remove {problem}" for problem in self.not_removed]
        lines.append("redactions: kept, always (the audit trail of redactions)")
        took = f"took {self.seconds:.2f} s"
        if not self.dry_run:
            took += (
                f" in {counted(self.transactions, 'transaction')}, the longest "
                f"{self.longest_transaction * 1000:.1f} ms"
            )
        lines.append(took)
        return lines


def purge(cutoffs: Cutoffs, dry_run: bool = False) -> Report:
    """Delete (or with `dry_run` only count) what the rules above say has been kept long
    enough; the Report of it."""
    return _Purge(cutoffs, dry_run).run()


class _Purge:
    def __init__(self, cutoffs: Cutoffs, dry_run: bool) -> None:
        self.cutoffs, self.dry_run = cutoffs, dry_run
        self.report = Report(dry_run)
        self.transactions = Transactions()
        # Dry run: the runs that would go, so workspaces are counted as if they had, and
        # the directories counted, each once.
        self.going: set[int] = set()
        self.counted: set[Path] = set()

    def run(self) -> Report:
        started = time.monotonic()
        protected = self.runs_kept_for_reruns() | live_deployments()
        self.purge_runs(protected)
        self.purge_deliveries(protected)
        self.report.rejections = self.delete_rows(
            RejectedRequest.objects.filter(received_at__lt=self.cutoffs.deliveries)
        )
        self.report.dropped_minutes = self.delete_rows(
            DroppedRejections.objects.filter(minute__lt=self.cutoffs.deliveries)
        )
        self.report.tasks = self.delete_rows(
            DBTaskResult.objects.filter(
                status__in=FINISHED_TASK, finished_at__lt=self.cutoffs.deliveries
            )
        )
        self.report.workers = self.delete_rows(
            WorkerSeen.objects.filter(seen_at__lt=self.cutoffs.deliveries)
        )
        self.remove_stale_workspaces()
        self.remove_partial_mirrors()
        self.report.transactions = self.transactions.count
        self.report.longest_transaction = self.transactions.longest
        self.report.seconds = time.monotonic() - started
        return self.report

    # Runs.

    def old_runs(self) -> QuerySet[Run]:
        return Run.objects.filter(created_at__lt=self.cutoffs.runs, status__in=ENDED)

    def runs_kept_for_reruns(self) -> set[int]:
        """Old finished runs that stay because a run that stays repeats them, directly or
        along a chain of re-runs."""
        old = Q(rerun_of__created_at__lt=self.cutoffs.runs, rerun_of__status__in=ENDED)
        staying = Run.objects.filter(Q(created_at__gte=self.cutoffs.runs) | ~Q(status__in=ENDED))
        frontier = set(staying.filter(old).values_list("rerun_of_id", flat=True))
        protected: set[int] = set()
        while frontier:
            protected |= frontier
            parents: set[int] = set()
            for ids in batches(sorted(frontier), LOOKUP_BATCH):
                parents.update(
                    Run.objects.filter(old, pk__in=ids).values_list("rerun_of_id", flat=True)
                )
            frontier = parents - protected
        return protected

    def purge_runs(self, protected: set[int]) -> None:
        self.report.runs_held = len(protected) + (
            Run.objects.filter(created_at__lt=self.cutoffs.runs).exclude(status__in=ENDED).count()
        )
        old = self.old_runs().values_list("pk", flat=True)
        for page in pages(old, RUN_BATCH, newest_first=True):
            going = [pk for pk in page if pk not in protected]
            if not going:
                continue
            if self.dry_run:
                self.going.update(going)
                self.report.runs += len(going)
                self.report.steps += Step.objects.filter(run__in=going).count()
                self.report.chunks += LogChunk.objects.filter(step__run__in=going).count()
                kept = Run.objects.filter(pk__in=going).exclude(kept_workspace="")
                self.remove_kept(kept.values_list("pk", "kept_workspace"))
            else:
                self.delete_runs(going)

    def delete_runs(self, page: list[int]) -> None:
        """Delete a page of runs: their chunks a batch at a time, then the runs and steps
        that still may go, in one transaction; then the workspaces they kept."""
        going = self.still_going(page)
        if not going:
            return
        stored = {
            pk: (output - dropped) if output > dropped else None
            for pk, output, dropped in Step.objects.filter(run__in=going)
            .order_by()
            .values_list("pk", "output_bytes", "dropped_bytes")
        }
        chunks = LogChunk.objects.filter(step_id__in=sorted(stored))
        for first, last in chunk_ranges(
            list(chunks.order_by("pk").values_list("pk", "step_id")), stored
        ):
            with self.transactions.one():
                deleted, _ = chunks.filter(pk__gte=first, pk__lte=last).delete()
            self.report.chunks += deleted
        with self.transactions.one():
            going = self.still_going(page, lock=True)
            kept = dict(
                Run.objects.filter(pk__in=going)
                .exclude(kept_workspace="")
                .values_list("pk", "kept_workspace")
            )
            # Only ids: the deletion needs nothing else of the rows it collects.
            _, per_model = Run.objects.filter(pk__in=going).only("pk").delete()
        self.report.runs += per_model.get(Run._meta.label, 0)
        self.report.steps += per_model.get(Step._meta.label, 0)
        self.report.chunks += per_model.get(LogChunk._meta.label, 0)
        self.remove_kept(kept.items())

    def remove_kept(self, workspaces: Iterable[tuple[int, str]]) -> None:
        """Remove the workspaces these (run id, kept_workspace) pairs kept."""
        for pk, kept_workspace in workspaces:
            if (directory := _kept_directory(pk, kept_workspace)) and directory.exists():
                self.remove(directory)

    def still_going(self, page: list[int], lock: bool = False) -> set[int]:
        """Those of `page` that may go now: still old and finished, and repeated by no run
        but ones that go with them (a run re-run since the page was read stays)."""
        runs = self.old_runs().filter(pk__in=page)
        if lock:
            # PostgreSQL: a re-run being inserted now waits, then fails on its foreign key.
            runs = runs.select_for_update()
        going = set(runs.values_list("pk", flat=True))
        reruns = list(Run.objects.filter(rerun_of__in=going).values_list("pk", "rerun_of_id"))
        while staying := {parent for pk, parent in reruns if pk not in going and parent in going}:
            going -= staying
        return going

    # Deliveries.

    def purge_deliveries(self, protected: set[int]) -> None:
        cutoff = self.cutoffs.deliveries
        staying_runs = Run.objects.filter(delivery=OuterRef("pk")).filter(
            Q(created_at__gte=self.cutoffs.runs)
            | ~Q(status__in=ENDED)
            | Q(pk__in=sorted(protected))
        )
        candidates = Delivery.objects.filter(received_at__lt=cutoff).exclude(Exists(staying_runs))
        candidates = candidates.exclude(Exists(_staying_repeats(cutoff)))
        if self.dry_run:
            self.report.deliveries = candidates.count()
            return
        candidate_pks = candidates.values_list("pk", flat=True)
        for page in pages(candidate_pks, DELIVERY_BATCH, newest_first=True):
            with self.transactions.one():
                # PostgreSQL: a run being added to one of them waits, then fails.
                list(Delivery.objects.select_for_update().filter(pk__in=page).values("pk"))
                # Checked again, strictly: CASCADE must never take a run with it.
                going = (
                    Delivery.objects.filter(pk__in=page, received_at__lt=cutoff)
                    .exclude(Exists(Run.objects.filter(delivery=OuterRef("pk"))))
                    .exclude(Exists(_staying_repeats(cutoff)))
                )
                # Only ids: never a payload (up to 25 MB each) read to delete it.
                _, per_model = going.only("pk").delete()
            self.report.deliveries += per_model.get(Delivery._meta.label, 0)

    # Everything else.

    def delete_rows(self, queryset: QuerySet) -> int:
        """Delete `queryset` ROW_BATCH rows per transaction; how many went."""
        if self.dry_run:
            return queryset.count()
        total = 0
        for page in pages(queryset.values_list("pk", flat=True), ROW_BATCH):
            with self.transactions.one():
                deleted, _ = queryset.filter(pk__in=page).delete()
            total += deleted
        return total

    # Directories.

    def remove_stale_workspaces(self) -> None:
        root = Path(settings.WORKSPACES_DIR)
        if not root.is_dir():
            return
        directories = {}
        for path in root.iterdir():
            if (match := WORKSPACE_NAME.fullmatch(path.name)) and _real_directory(path):
                directories[int(match[1])] = path
        runs = {}
        for ids in batches(sorted(directories), LOOKUP_BATCH):
            rows = Run.objects.filter(pk__in=ids).values_list("pk", "status", "kept_workspace")
            runs.update({pk: (status, kept) for pk, status, kept in rows})
        for pk, path in sorted(directories.items()):
            status, kept = runs.get(pk, (None, ""))
            if status is None or pk in self.going or (status in Run.ENDED and not kept):
                self.remove(path)

    def remove_partial_mirrors(self) -> None:
        root = Path(settings.MIRRORS_DIR)
        if not root.is_dir():
            return
        old = time.time() - PARTIAL_MIRROR_AGE.total_seconds()
        for path in sorted(root.glob("*.partial")):
            if not _real_directory(path) or path.lstat().st_mtime >= old:
                continue
            if self.dry_run:
                self.report.partial_mirrors += 1
                continue
            # The lock runner.execution.checkout takes for this mirror: held, a clone is under way.
            lock = path.with_name(path.name.removesuffix(".partial") + ".lock")
            with lock.open("a") as file:
                try:
                    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                if self.remove(path, count=False):
                    self.report.partial_mirrors += 1
                fcntl.flock(file, fcntl.LOCK_UN)

    def remove(self, path: Path, count: bool = True) -> bool:
        """Remove the directory `path` (dry run: count it); whether it went."""
        if self.dry_run:
            if path in self.counted:
                return True
            self.counted.add(path)
        else:
            try:
                shutil.rmtree(path)
            except OSError as error:
                logger.warning("purge could not remove %s: %s", path, error)
                self.report.not_removed.append(f"{path}: {error.strerror or error}")
                return False
        if count:
            self.report.workspaces += 1
        return True


def live_deployments() -> set[int]:
    """The live run of every environment: one indexed lookup per environment."""
    environments = Run.objects.exclude(environment="").values_list("repository", "environment")
    live = (Run.objects.live(*pair) for pair in set(environments.distinct()))
    return {run.pk for run in live if run is not None}


def _staying_repeats(cutoff: datetime) -> QuerySet[Delivery]:
    """An original's repeats that stay, which deleting the original would take with it."""
    return Delivery.objects.filter(original=OuterRef("pk")).filter(
        Q(received_at__gte=cutoff) | Q(Exists(Run.objects.filter(delivery=OuterRef("pk"))))
    )


def _kept_directory(pk: int, kept_workspace: str) -> Path | None:
    """The run-<id> directory holding a run's kept workspace, or None if it is not one."""
    directory = Path(kept_workspace).parent
    return directory if directory.name == f"run-{pk}" else None


def _real_directory(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()
