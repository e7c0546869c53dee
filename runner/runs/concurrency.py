"""Runs of one concurrency group take turns, oldest first; cancel_in_progress makes the
newest cancel the older ones of its group."""

from django.db import transaction

from runner.models import ConcurrencyGroup, Run
from runner.models.db import write_transaction

CLAIMED, WAITING, GONE = "claimed", "waiting", "gone"


def claim_in_turn(run: Run, worker: str) -> str:
    """CLAIMED if `run` may start now (it is then running), WAITING if another run of its
    group goes first, GONE if it is no longer queued."""
    if not run.concurrency_group:
        return CLAIMED if run.claim(worker) else GONE
    with write_transaction():
        _lock_group(run.concurrency_group)
        older = Run.objects.filter(concurrency_group=run.concurrency_group, pk__lt=run.pk)
        if (run.definition.get("concurrency") or {}).get("cancel_in_progress"):
            for other in older.filter(status__in=[Run.Status.QUEUED, Run.Status.RUNNING]):
                other.request_cancel(
                    f"cancelled by run {run.pk}, newer in concurrency group {run.concurrency_group}"
                )
        others = Run.objects.filter(concurrency_group=run.concurrency_group).exclude(pk=run.pk)
        if others.running().exists() or older.queued().exists():
            return WAITING
        return CLAIMED if run.claim(worker) else GONE


def _lock_group(name: str) -> None:
    # On PostgreSQL the row lock serialises workers deciding for one group; SQLite's
    # write transaction already does.
    with transaction.atomic():
        ConcurrencyGroup.objects.get_or_create(name=name)
    ConcurrencyGroup.objects.select_for_update().get(name=name)
