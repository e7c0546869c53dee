"""Delete history older than a cutoff, in small batches so the receiver never waits long."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django_tasks_db.models import DBTaskResult

from runner.db import write_transaction
from runner.models import Delivery, DroppedRejections, RejectedRequest, Run

BATCH = 500
ACTIVE = (Run.Status.QUEUED, Run.Status.RUNNING)


@dataclass(frozen=True)
class Purged:
    deliveries: int
    rejections: int
    tasks: int


def purgeable(cutoff: datetime) -> dict[str, QuerySet]:
    """What is older than `cutoff` and done with: a delivery goes with its runs and output,
    unless one of them is still queued or running."""
    return {
        "deliveries": Delivery.objects.filter(original__isnull=True, received_at__lt=cutoff)
        .exclude(runs__status__in=ACTIVE)
        .exclude(repeats__received_at__gte=cutoff),
        "rejections": RejectedRequest.objects.filter(received_at__lt=cutoff),
        "dropped": DroppedRejections.objects.filter(minute__lt=cutoff),
        "tasks": DBTaskResult.objects.filter(
            Q(status="SUCCESSFUL") | Q(status="FAILED"), finished_at__lt=cutoff
        ),
    }


def purge(cutoff: datetime) -> Purged:
    querysets = purgeable(cutoff)
    deleted = {name: _delete_in_batches(queryset) for name, queryset in querysets.items()}
    return Purged(deleted["deliveries"], deleted["rejections"], deleted["tasks"])


def _delete_in_batches(queryset: QuerySet) -> int:
    total = 0
    while batch := list(queryset.values_list("pk", flat=True)[:BATCH]):
        with write_transaction():
            queryset.model.objects.filter(pk__in=batch).delete()
        total += len(batch)
    return total
