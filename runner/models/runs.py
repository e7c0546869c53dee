"""Runs, their steps and their output, and the rows concurrency groups lock."""

from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower, Now
from django.utils import timezone

from runner.models.db import clipped
from runner.models.deliveries import Delivery


def _duration(started_at: datetime | None, finished_at: datetime | None) -> timedelta | None:
    return finished_at - started_at if started_at and finished_at else None


class RunQuerySet(models.QuerySet):
    def queued(self) -> "RunQuerySet":
        return self.filter(status=Run.Status.QUEUED)

    def running(self) -> "RunQuerySet":
        return self.filter(status=Run.Status.RUNNING)

    def stale(self, silent_since: datetime) -> "RunQuerySet":
        """Running runs whose worker has not been heard of since `silent_since`."""
        return self.running().filter(heartbeat_at__lt=silent_since)


class Run(models.Model):
    """One pipeline started by one delivery, with everything the worker needs to run it."""

    class Status(models.TextChoices):
        # Its pipeline `needs` others to succeed for the same sha first.
        WAITING = "waiting", "waiting"
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        TIMED_OUT = "timed_out", "timed out"
        CANCELLED = "cancelled", "cancelled"
        # hookrunner itself could not run it (a missing secret, a lost worker...).
        ERROR = "error", "error"
        # A pipeline it needs did not succeed.
        SKIPPED = "skipped", "skipped"

    # Statuses a run never leaves.
    ENDED = frozenset(Status) - {Status.WAITING, Status.QUEUED, Status.RUNNING}

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="runs")
    repository = models.CharField(max_length=200)
    pipeline = models.CharField(max_length=200)
    event = models.CharField(max_length=64)
    sha = models.CharField(max_length=64, blank=True)
    ref = models.CharField(max_length=255, blank=True)
    pr_number = models.PositiveIntegerField(null=True, blank=True)
    from_fork = models.BooleanField(default=False)
    # The pipeline as pipelines.yaml defined it when the delivery arrived.
    definition = models.JSONField()
    queue = models.CharField(max_length=64, default="default")
    # The django-tasks-db task that executes this run; the task finds its run by it.
    # None while the run waits for the pipelines it needs.
    task_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Read by the worker's and admin's queued()/running() filters.
    status = models.CharField(max_length=16, choices=Status, default=Status.QUEUED, db_index=True)
    detail = models.CharField(max_length=500, blank=True)
    # Who runs it ("host:pid") and when it last said so; a silent worker has died.
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Set by a person in admin; a running run's worker looks for it while steps run.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    # Who asked for a re-run; the name stays when the account goes.
    rerun_by = models.CharField(max_length=150, blank=True)
    # Runs sharing a group take turns; read by the worker before it claims a run.
    concurrency_group = models.CharField(max_length=200, blank=True, db_index=True)
    # Set when the pipeline keeps its workspace after the run (keep_workspace: true).
    kept_workspace = models.CharField(max_length=500, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        indexes = [
            # A pipeline's runs newest first: admin's filters, previous run, index page.
            models.Index(fields=["repository", "pipeline", "-id"], name="run_pipeline_newest"),
            # The badge: a pipeline's last finished run, repository compared lower-cased.
            models.Index(
                Lower("repository"),
                F("pipeline"),
                F("finished_at").desc(),
                F("id").desc(),
                name="run_badge_lookup",
                condition=Q(finished_at__isnull=False),
            ),
        ]
        permissions = [
            ("cancel_run", "Can cancel runs"),
            ("rerun_run", "Can run runs again"),
            ("redact_output", "Can redact a value from stored output"),
        ]

    def __str__(self) -> str:
        return f"{self.repository} {self.pipeline} #{self.pk}"

    @property
    def duration(self) -> timedelta | None:
        return _duration(self.started_at, self.finished_at)

    def claim(self, worker: str) -> bool:
        """Move a queued run to running; False if it was not queued (someone else has it)."""
        now = timezone.now()
        claimed = (
            Run.objects.queued()
            .filter(pk=self.pk)
            .update(status=Run.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker)
        )
        if claimed:
            self.status, self.started_at, self.worker = Run.Status.RUNNING, now, worker
        return claimed == 1

    def beat(self) -> None:
        Run.objects.filter(pk=self.pk).update(heartbeat_at=timezone.now())

    def request_cancel(self, reason: str = "cancelled") -> str:
        """Cancel now if queued or waiting, or ask the worker to stop it if running; what
        happened. `reason` starts the run's detail ("cancelled by ... before it started")."""
        waiting_or_queued = Run.objects.filter(status__in=[Run.Status.QUEUED, Run.Status.WAITING])
        if self.end(waiting_or_queued, Run.Status.CANCELLED, f"{reason} before it started"):
            return "cancelled"
        # The worker reads the reason back from detail when it stops the run.
        if (
            Run.objects.running()
            .filter(pk=self.pk)
            .update(cancel_requested_at=timezone.now(), **clipped(Run, detail=reason))
        ):
            return "asked to stop"
        return "already finished"

    def skip_pending_steps(self) -> None:
        """Once the run has ended, the steps it never started are skipped."""
        self.steps.filter(status=Step.Status.PENDING).update(status=Step.Status.SKIPPED)

    def cancel_reason(self) -> str | None:
        """Why someone asked to cancel this running run, or None if nobody did."""
        row = (
            Run.objects.filter(pk=self.pk, cancel_requested_at__isnull=False)
            .values_list("detail", flat=True)
            .first()
        )
        return None if row is None else row or "cancelled"

    def finish(self, status: str, detail: str = "") -> bool:
        """Record how the running run ended; False, changing nothing, if it was no longer
        running (a reaper took its worker for dead and marked it lost meanwhile)."""
        return self.end(Run.objects.running(), status, detail, kept_workspace=self.kept_workspace)

    def end(self, among: "RunQuerySet", status: str, detail: str, **fields: Any) -> bool:
        """End the run with `status` if it is still one of `among`, then do what follows
        every end (runner.runs.ended); False, changing nothing, if it was not."""
        values = {"status": status, "finished_at": timezone.now(), **fields}
        values.update(clipped(Run, detail=detail))
        if not among.filter(pk=self.pk).update(**values):
            self.refresh_from_db()
            return False
        for name, value in values.items():
            setattr(self, name, value)
        # Imported here: runner.runs.ended itself builds on these models.
        from runner.runs.ended import run_ended

        run_ended(self)
        return True


class Step(models.Model):
    """One step of a run, in order, with how it ended."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        TIMED_OUT = "timed_out", "timed out"
        CANCELLED = "cancelled", "cancelled"
        SKIPPED = "skipped", "skipped"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    exit_code = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    output_bytes = models.PositiveBigIntegerField(default=0)
    # Output past the per-step bound: counted in output_bytes, dropped from the middle.
    dropped_bytes = models.PositiveBigIntegerField(default=0)
    # The step's process group, so a dead worker's leftovers can be found and killed.
    pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="one_step_per_position")
        ]

    def __str__(self) -> str:
        return f"{self.run} step {self.index}: {self.name}"

    @property
    def duration(self) -> timedelta | None:
        return _duration(self.started_at, self.finished_at)

    def start(self, pid: int | None) -> None:
        self.status, self.started_at, self.pid = Step.Status.RUNNING, timezone.now(), pid
        self.save(update_fields=["status", "started_at", "pid"])

    def record_pid(self, pid: int) -> None:
        """The step's current process group (a checkout runs several, one after another)."""
        self.pid = pid
        self.save(update_fields=["pid"])

    def finish(self, status: str, exit_code: int | None) -> None:
        self.status, self.exit_code, self.finished_at = status, exit_code, timezone.now()
        self.save(
            update_fields=["status", "exit_code", "finished_at", "output_bytes", "dropped_bytes"]
        )


class LogChunk(models.Model):
    """A piece of a step's output, in order; one row per piece, never one growing field."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["step", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["step", "seq"], name="one_chunk_per_position")
        ]

    def __str__(self) -> str:
        return f"{self.step} chunk {self.seq}"


class ConcurrencyGroup(models.Model):
    """A row to lock while deciding whose turn it is in a concurrency group."""

    name = models.CharField(max_length=200, unique=True)

    def __str__(self) -> str:
        return self.name
