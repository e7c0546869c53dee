"""What people decide about waiting runs: approving and rejecting, an approval that
expires, and locking and unlocking an environment."""

import logging

from django.utils import timezone

from runner.models import Decision, EnvironmentLock, Run, clipped
from runner.models.db import write_transaction
from runner.runs.lifecycle.ending import after_end, end
from runner.runs.lifecycle.waits import Stage, advance

logger = logging.getLogger(__name__)


def approve(run: Run, by: str, reason: str = "") -> bool:
    """A person approves a run waiting for approval, which moves on; False, changing
    nothing, if it was not waiting for approval."""
    with write_transaction():
        if not waiting_for_approval(run):
            return False
        Decision.objects.create(run=run, approved=True, **clipped(Decision, by=by, reason=reason))
        Run.objects.filter(pk=run.pk).update(approval_expires_at=None)
        advance(run, Stage.LOCK)
    return True


def reject(run: Run, by: str, reason: str = "") -> bool:
    """A person rejects a run waiting for approval: it ends cancelled, saying who and why;
    False, changing nothing, if it was not waiting for approval."""
    with write_transaction():
        if not waiting_for_approval(run):
            return False
        Decision.objects.create(run=run, approved=False, **clipped(Decision, by=by, reason=reason))
        why = f"rejected by {by}" + (f": {reason}" if reason else "")
        among = Run.objects.waiting().filter(waiting_for=Run.WaitingFor.APPROVAL)
        if end(run, among, Run.Status.CANCELLED, why):
            after_end([run])
    return True


def waiting_for_approval(run: Run) -> bool:
    run.refresh_from_db()
    return run.status == Run.Status.WAITING and run.waiting_for == Run.WaitingFor.APPROVAL


def expire_approvals() -> list[int]:
    """Skip every run that waited for approval past its pipeline's `expires`; their ids."""
    expired = []
    for run in Run.objects.approval_expired(timezone.now()):
        with write_transaction():
            among = Run.objects.approval_expired(timezone.now())
            if end(run, among, Run.Status.SKIPPED, "skipped: approval expired"):
                after_end([run])
                expired.append(run.pk)
    if expired:
        logger.info("runs %s skipped: approval expired", ", ".join(map(str, expired)))
    return expired


def lock(repository: str, environment: str, by: str, reason: str) -> EnvironmentLock:
    """Freeze an environment: its runs not yet started wait until it is unlocked (a
    queued one when a worker claims it). Locked again, it keeps the first lock."""
    with write_transaction():
        held, _ = EnvironmentLock.objects.get_or_create(
            repository=repository,
            environment=environment,
            defaults=clipped(EnvironmentLock, by=by, reason=reason),
        )
    return held


def unlock(repository: str, environment: str) -> list[int] | None:
    """End an environment's freeze; the runs released, oldest first, or None if it was
    not locked."""
    with write_transaction():
        deleted, _ = EnvironmentLock.objects.filter(
            repository=repository, environment=environment
        ).delete()
        if not deleted:
            return None
        waiting = list(Run.objects.waiting_for_lock(repository, environment).order_by("pk"))
        for run in waiting:
            advance(run, Stage.TURN)
    return [run.pk for run in waiting]
