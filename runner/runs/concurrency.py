"""Concurrency groups: at most one run of a group is queued or running; the others wait
for their turn, oldest first. Here the queries and the lock; runner.runs.lifecycle gives
the turn when a run enters the group's line and whenever one of the group ends."""

from django.db import transaction

from runner.models import ConcurrencyGroup, Run


def lock_group(name: str) -> None:
    """Hold the group's row until the transaction ends: on PostgreSQL workers and
    receivers deciding for one group queue behind it; SQLite's write lock already does."""
    with transaction.atomic():
        ConcurrencyGroup.objects.get_or_create(name=name)
    ConcurrencyGroup.objects.select_for_update().get(name=name)


def has_turn_taken(group: str) -> bool:
    """Whether a run of the group is queued or running."""
    return (
        Run.objects.in_group(group)
        .filter(status__in=[Run.Status.QUEUED, Run.Status.RUNNING])
        .exists()
    )


def next_in_line(group: str) -> Run | None:
    """The oldest run of the group waiting for its turn."""
    waiting = Run.objects.in_group(group).filter(
        status=Run.Status.WAITING, waiting_for=Run.WaitingFor.TURN
    )
    return waiting.order_by("pk").first()


def older_in_line(run: Run) -> list[Run]:
    """The runs of the run's group that came before it and have not ended, but for those
    still waiting for what they need (they are not in the line yet)."""
    older = Run.objects.in_group(run.concurrency_group).filter(pk__lt=run.pk)
    return list(older.exclude(waiting_for=Run.WaitingFor.NEEDS).order_by("pk"))
