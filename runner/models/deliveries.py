"""Deliveries GitHub sent, and the requests the receiver refused."""

import json
from functools import cache
from typing import Any

from django.db import connections, models
from django.db.models import Q
from django.db.models.functions import Now

from runner.models.db import clipped

# The receiver writes every delivery twice (stored, then its outcome). Built by the ORM
# those two statements were 1.5 of the 1.8 ms a request took; as plain SQL, 0.6 ms
# (bench/receiver.py). Everything else about deliveries goes through the ORM.
RECEIVED_COLUMNS = ("delivery_id", "event", "action", "hook_id", "repository", "sender", "ref")


@cache
def _insert_received_sql() -> str:
    table = Delivery._meta.db_table
    columns = [Delivery._meta.get_field(name).column for name in RECEIVED_COLUMNS]
    columns += ["payload", "status", "detail", "attempts"]
    placeholders = ", ".join(["%s"] * len(columns))
    # Table and column names come from the model, never from input.
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) RETURNING id"  # noqa: S608


class DeliveryQuerySet(models.QuerySet):
    def originals(self) -> "DeliveryQuerySet":
        return self.exclude(status=Delivery.Status.DUPLICATE)

    def insert_received(
        self,
        payload: dict[str, Any],
        status: str = "received",
        detail: str = "",
        **values: str,
    ) -> int:
        """Store a delivery as received (or with its outcome, when it was decided before
        and starts nothing); its id. Raises IntegrityError for a known id."""
        values = clipped(Delivery, detail=detail, **values)
        row = [values[name] for name in RECEIVED_COLUMNS]
        row += [json.dumps(payload), status, values["detail"], 1]
        with connections[self.db].cursor() as cursor:
            cursor.execute(_insert_received_sql(), row)
            return cursor.fetchone()[0]

    def set_outcome(self, pk: int, status: str, detail: str) -> None:
        table = Delivery._meta.db_table
        with connections[self.db].cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET status = %s, detail = %s WHERE id = %s",  # noqa: S608
                [status, clipped(Delivery, detail=detail)["detail"], pk],
            )


class Delivery(models.Model):
    """One authenticated GitHub delivery, stored before anything else is done with it."""

    class Status(models.TextChoices):
        RECEIVED = "received", "received"
        ACCEPTED = "accepted", "accepted"
        IGNORED = "ignored", "ignored"
        DUPLICATE = "duplicate", "duplicate"
        FAILED = "failed", "failed"

    delivery_id = models.CharField(max_length=100)
    event = models.CharField(max_length=64)
    action = models.CharField(max_length=64, blank=True)
    hook_id = models.CharField(max_length=32, blank=True)
    repository = models.CharField(max_length=200, blank=True)
    sender = models.CharField(max_length=100, blank=True)
    ref = models.CharField(max_length=255, blank=True)
    # Read by admin's date drill-down and by retention purges.
    received_at = models.DateTimeField(db_default=Now(), db_index=True)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status, default=Status.RECEIVED)
    detail = models.CharField(max_length=500, blank=True)
    # Bumped whenever processing starts, so only one redelivery can claim a retry.
    attempts = models.PositiveIntegerField(default=1)
    # When a process last took it up again (a redelivery, a worker's upkeep): while it is
    # `received`, it is being processed since then, or since it arrived if never taken.
    claimed_at = models.DateTimeField(null=True, blank=True)
    # A repeat of an earlier delivery id is logged as its own row, pointing here.
    original = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="repeats"
    )

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        permissions = [("replay_delivery", "Can replay deliveries against pipelines.yaml")]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery_id"],
                condition=~Q(status="duplicate"),
                name="one_original_per_delivery_id",
            )
        ]
        indexes = [
            # Deliveries still being processed, or cut off: workers look for those every
            # REAP_SECONDS, whatever the number of deliveries kept.
            models.Index(
                fields=["received_at"], name="delivery_received", condition=Q(status="received")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.delivery_id}"


class RejectedRequest(models.Model):
    """A request the receiver refused: what users look at when GitHub shows a red delivery."""

    # Read by the per-minute storage bound and by admin's date drill-down.
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    http_status = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=300)
    remote_addr = models.CharField(max_length=64, blank=True)
    delivery_id = models.CharField(max_length=100, blank=True)
    event = models.CharField(max_length=64, blank=True)
    headers = models.JSONField(default=dict)
    body_sha256 = models.CharField(max_length=64, blank=True)
    body_bytes = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.http_status} {self.reason}"


class DroppedRejections(models.Model):
    """How many rejections went unstored in one minute because the bound was reached."""

    minute = models.DateTimeField(unique=True)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "dropped rejections"

    def __str__(self) -> str:
        return f"{self.count} dropped at {self.minute:%Y-%m-%d %H:%M}"
