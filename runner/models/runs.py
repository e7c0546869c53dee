"""Runs, their steps and their output, and the rows concurrency groups lock."""

from datetime import datetime, timedelta

from django.db import connections, models
from django.db.models import F, Q
from django.db.models.functions import Lower, Now
from django.utils import timezone

from runner.config.definition import RunDefinition
from runner.models.db import write_transaction
from runner.models.deliveries import Delivery


def _duration(started_at: datetime | None, finished_at: datetime | None) -> timedelta | None:
    return finished_at - started_at if started_at and finished_at else None


class RunQuerySet(models.QuerySet):
    def queued(self) -> "RunQuerySet":
        return self.filter(status=Run.Status.QUEUED)

    def running(self) -> "RunQuerySet":
        return self.filter(status=Run.Status.RUNNING)

    def waiting(self) -> "RunQuerySet":
        return self.filter(status=Run.Status.WAITING)

    def stale(self, silent_since: datetime) -> "RunQuerySet":
        """Running runs whose worker has not been heard of since `silent_since`."""
        return self.running().filter(heartbeat_at__lt=silent_since)

    def waiting_for_needs(self, repository: str, sha: str) -> "RunQuerySet":
        return self.waiting().filter(
            repository=repository, sha=sha, waiting_for=Run.WaitingFor.NEEDS
        )

    def newest_of(self, repository: str, sha: str, pipeline: str) -> "Run | None":
        """The newest run of `pipeline` for `repository` at `sha`."""
        runs = self.filter(repository=repository, sha=sha, pipeline=pipeline)
        return runs.order_by("-pk").first()

    def waiting_for_lock(self, repository: str, environment: str) -> "RunQuerySet":
        return self.waiting().filter(
            repository=repository, environment=environment, waiting_for=Run.WaitingFor.LOCK
        )

    def approval_expired(self, now: datetime) -> "RunQuerySet":
        return self.waiting().filter(
            waiting_for=Run.WaitingFor.APPROVAL, approval_expires_at__lte=now
        )

    def deployments(self, repository: str, environment: str) -> "RunQuerySet":
        """The runs of an environment, newest first."""
        return self.filter(repository=repository, environment=environment).order_by("-pk")

    def live(self, repository: str, environment: str) -> "Run | None":
        """The deployment live in an environment: its last run that succeeded."""
        succeeded = self.deployments(repository, environment).filter(status=Run.Status.SUCCEEDED)
        return succeeded.first()

    def in_group(self, group: str) -> "RunQuerySet":
        """The runs of a concurrency group that have not ended."""
        unended = [Run.Status.WAITING, Run.Status.QUEUED, Run.Status.RUNNING]
        return self.filter(concurrency_group=group, status__in=unended)


class DefinitionField(models.JSONField):
    """A RunDefinition, stored as its versioned JSON."""

    def from_db_value(self, value, expression, connection) -> RunDefinition | None:
        data = super().from_db_value(value, expression, connection)
        return None if data is None else RunDefinition.from_json(data)

    def get_prep_value(self, value):
        if isinstance(value, RunDefinition):
            value = value.to_json()
        return super().get_prep_value(value)


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

    class WaitingFor(models.TextChoices):
        # The pipelines it needs have not all succeeded for its sha yet.
        NEEDS = "needs", "what it needs"
        # Another run of its concurrency group is queued or running.
        TURN = "turn", "its turn"
        # A person's approval (its pipeline says approval: required).
        APPROVAL = "approval", "approval"
        # Its environment is locked (a deploy freeze).
        LOCK = "lock", "its environment's lock"

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
    definition = DefinitionField()
    queue = models.CharField(max_length=64, default="default")
    # The django-tasks-db task that executes this run; the task finds its run by it.
    # None while the run waits.
    task_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Read by the worker's and admin's queued()/running() filters.
    status = models.CharField(max_length=16, choices=Status, default=Status.QUEUED, db_index=True)
    detail = models.CharField(max_length=500, blank=True)
    # What a waiting run waits for; empty once it is not waiting.
    waiting_for = models.CharField(max_length=8, choices=WaitingFor, blank=True)
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
    # Runs sharing a group take turns, oldest first.
    concurrency_group = models.CharField(max_length=200, blank=True)
    # Set when the pipeline keeps its workspace after the run (keep_workspace: true).
    kept_workspace = models.CharField(max_length=500, blank=True)
    # Where its pipeline deploys (environment:), empty for a pipeline that names none.
    environment = models.CharField(max_length=100, blank=True)
    # What a person gave a manual run's inputs, by name.
    inputs = models.JSONField(default=dict, blank=True)
    # Who started a manual run or a rollback; the name stays when the account goes.
    requested_by = models.CharField(max_length=150, blank=True)
    # The live deployment a rollback replaces, and why a person asked for it.
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rollbacks"
    )
    reason = models.CharField(max_length=500, blank=True)
    # A run waiting for approval past this is skipped.
    approval_expires_at = models.DateTimeField(null=True, blank=True)
    # The deployment GitHub made for this run, once it answered.
    github_deployment_id = models.BigIntegerField(null=True, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        indexes = [
            # A pipeline's runs newest first: admin's filters, previous run, index page.
            models.Index(fields=["repository", "pipeline", "-id"], name="run_pipeline_newest"),
            # The newest run of a pipeline at a sha: settling needs, stale commit statuses.
            models.Index(fields=["repository", "sha", "pipeline", "-id"], name="run_sha_newest"),
            # Runs waiting for what they need, found at every run's end: only waiting rows,
            # however many ended runs a sha has.
            models.Index(
                fields=["repository", "sha"],
                name="run_waiting_by_sha",
                condition=Q(status="waiting"),
            ),
            # Whose turn it is in a concurrency group, found at every end of a grouped run.
            models.Index(
                fields=["concurrency_group", "id"],
                name="run_group_unended",
                condition=Q(status__in=["waiting", "queued", "running"]),
            ),
            # An environment's deployments newest first: the environments page, rollback.
            models.Index(
                fields=["repository", "environment", "-id"],
                name="run_environment_newest",
                condition=~Q(environment=""),
            ),
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
            ("approve_run", "Can approve or reject runs waiting for approval"),
            ("deploy", "Can start manual runs and roll back deployments"),
            ("lock_environment", "Can lock and unlock environments"),
        ]

    def __str__(self) -> str:
        return f"{self.repository} {self.pipeline} #{self.pk}"

    @property
    def duration(self) -> timedelta | None:
        return _duration(self.started_at, self.finished_at)

    def beat(self) -> None:
        Run.objects.filter(pk=self.pk).update(heartbeat_at=timezone.now())

    def cancel_reason(self) -> str | None:
        """Why someone asked to cancel this running run, or None if nobody did."""
        row = (
            Run.objects.filter(pk=self.pk, cancel_requested_at__isnull=False)
            .values_list("detail", flat=True)
            .first()
        )
        return None if row is None else row or "cancelled"


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

    def record_pid(self, pid: int) -> None:
        """The step's current process group (a checkout runs several, one after another)."""
        self.pid = pid
        self.save(update_fields=["pid"])


class LogChunkQuerySet(models.QuerySet):
    # Rows per INSERT: well within the parameters every database takes in one statement.
    INSERT_ROWS = 100

    def insert_pieces(self, step_id: int, first_seq: int, texts: list[str]) -> None:
        """Store `texts` as the chunks `first_seq`, `first_seq` + 1, ... of a step, in one
        transaction. As bulk_create, without a model instance and its SQL built per piece:
        that was most of the Python time of storing a step that floods its output."""
        table, names = LogChunk._meta.db_table, "step_id, seq, text"
        rows = [(step_id, first_seq + index, text) for index, text in enumerate(texts)]
        with write_transaction(self.db), connections[self.db].cursor() as cursor:
            for start in range(0, len(rows), self.INSERT_ROWS):
                batch = rows[start : start + self.INSERT_ROWS]
                values = ", ".join(["(%s, %s, %s)"] * len(batch))
                cursor.execute(
                    f"INSERT INTO {table} ({names}) VALUES {values}",  # noqa: S608
                    [value for row in batch for value in row],
                )


class LogChunk(models.Model):
    """A piece of a step's output, in order; one row per piece, never one growing field."""

    # The most output one piece holds; the worker stores a step's output in pieces this big.
    MOST_BYTES = 64 * 1024

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(db_default=Now())

    objects = LogChunkQuerySet.as_manager()

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
