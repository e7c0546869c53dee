"""Processing a stored delivery: its outcome decided against pipelines.yaml, and its runs
and outcome committed together; claiming it, so that one process only works on it; and
the deliveries a dead process left `received`, processed from their stored payload.

The receiver processes each delivery as it arrives (runner.receiver.intake), deciding it
first so that one starting nothing is stored with its outcome at once; a worker's upkeep
processes those stranded past ABANDONED_AFTER (runner.execution.upkeep). Both decide with
`decide` and commit with `process_decided`, so a stranded delivery ends as it would have
if its process had lived.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from runner.config.github import BadDelivery, Event, event_from_payload
from runner.config.matching import match
from runner.config.pipelines import Pipeline
from runner.config.repositories import Config
from runner.config.store import pipelines_in_force, pipelines_store
from runner.config.text import counted
from runner.models import Delivery
from runner.models.db import write_transaction
from runner.runs.lifecycle import create_runs

logger = logging.getLogger(__name__)
Status = Delivery.Status

# A delivery still `received` this long after it arrived, or after a process claimed it,
# was cut off mid-processing (its process died): it may be claimed and processed again.
ABANDONED_AFTER = timedelta(minutes=1)
# Stranded deliveries one upkeep processes at most; the rest wait for the next one.
STRANDED_PER_UPKEEP = 100


class Decision(NamedTuple):
    """A delivery's outcome, its one-line detail, and the pipelines it starts."""

    status: str
    detail: str
    starting: list[Pipeline]


class InvalidPipelines(RuntimeError):
    """No valid pipelines file was ever loaded, so nothing can be matched."""


@dataclass(frozen=True)
class Outcome:
    """What processing a delivery ended in: its status, one-line detail and runs."""

    delivery_id: str
    status: str
    detail: str
    run_ids: list[int] = field(default_factory=list)


def process(pk: int, event: Event, config: Config | None) -> Outcome:
    """Decide delivery `pk` (carrying `event`) against `config` (None: no valid pipelines
    file yet), then commit its runs and its outcome together; a failure is its outcome."""
    try:
        decision = decide(event, config)
    except Exception as error:
        return _failed(pk, event, error)
    return process_decided(pk, event, decision)


def process_decided(pk: int, event: Event, decision: Decision) -> Outcome:
    """Commit the runs and the outcome of delivery `pk`, as decided; a failure is its
    outcome."""
    status, detail, starting = decision
    try:
        # Runs, their tasks and the outcome commit together: a 2xx means all are queued.
        with write_transaction():
            run_ids = create_runs(pk, event, starting)
            Delivery.objects.set_outcome(pk, status, detail)
    except Exception as error:
        return _failed(pk, event, error)
    return Outcome(event.delivery_id, status, detail, run_ids)


def _failed(pk: int, event: Event, error: Exception) -> Outcome:
    logger.exception("processing failed delivery=%s", event.delivery_id)
    detail = f"processing failed, redeliver once fixed: {type(error).__name__}: {error}"
    with write_transaction():
        Delivery.objects.set_outcome(pk, Status.FAILED, detail)
    return Outcome(event.delivery_id, Status.FAILED, detail)


def decide(event: Event, config: Config | None) -> Decision:
    """The delivery's outcome, its one-line detail, and the pipelines it starts."""
    if event.is_ping:
        pong = f"pong: hook {event.pinged_hook or '?'} reached hookrunner"
        return Decision(Status.ACCEPTED, pong, [])
    if not event.is_acted_on:
        return Decision(Status.IGNORED, f"hookrunner does not act on {event.name} events", [])
    if config is None:
        raise InvalidPipelines(pipelines_store().error)
    verdicts = match(config, event)
    if not verdicts:
        return Decision(
            Status.IGNORED, f"no pipelines for {event.repository} in {config.source}", []
        )
    starting = [verdict.pipeline for verdict in verdicts if verdict.starts]
    if not starting:
        reasons = "; ".join(f"{v.pipeline.name}: {v.reason}" for v in verdicts)
        return Decision(Status.IGNORED, f"no pipeline matched: {reasons}", [])
    names = ", ".join(pipeline.name for pipeline in starting)
    return Decision(Status.ACCEPTED, f"started {counted(len(starting), 'run')}: {names}", starting)


def processing_since(delivery: Delivery) -> datetime:
    """When the processing of a `received` delivery began: its claim, else its arrival."""
    return delivery.claimed_at or delivery.received_at


def abandoned(delivery: Delivery, now: datetime | None = None) -> bool:
    """Whether `delivery` was cut off mid-processing: `received` for ABANDONED_AFTER."""
    now = now or timezone.now()
    return delivery.status == Status.RECEIVED and processing_since(delivery) < now - ABANDONED_AFTER


def claim(delivery: Delivery) -> bool:
    """Take a failed or abandoned delivery, as read, for processing again. Only one
    caller wins: the update holds only while its status and attempts are as read."""
    with write_transaction():
        claimed = Delivery.objects.filter(
            pk=delivery.pk, status=delivery.status, attempts=delivery.attempts
        ).update(
            status=Status.RECEIVED,
            attempts=F("attempts") + 1,
            claimed_at=timezone.now(),
            detail=f"being processed again (attempt {delivery.attempts + 1})",
        )
    return claimed == 1


def stranded_deliveries(now: datetime) -> QuerySet:
    """Deliveries still `received` whose processing began over ABANDONED_AFTER before
    `now`, oldest first (read through a partial index of `received` rows only)."""
    since = Coalesce("claimed_at", "received_at")
    left = Delivery.objects.filter(status=Status.RECEIVED).alias(since=since)
    oldest_first = left.filter(since__lt=now - ABANDONED_AFTER).order_by("received_at", "pk")
    return oldest_first[:STRANDED_PER_UPKEEP]


def process_stranded() -> list[Outcome]:
    """Claim each abandoned delivery and process it from its stored payload against the
    configuration in force; what each ended in. Safe with any number of workers at once:
    each delivery is claimed by one of them."""
    now = timezone.now()
    outcomes = []
    for delivery in stranded_deliveries(now):
        if not claim(delivery):
            continue
        outcome = _process_stored(delivery)
        logger.warning(
            "delivery=%s event=%s repository=%s stranded since %s, processed from its "
            "stored payload: outcome=%s detail=%s",
            delivery.delivery_id,
            delivery.event,
            delivery.repository or "-",
            f"{processing_since(delivery):%Y-%m-%d %H:%M:%S} UTC",
            outcome.status,
            outcome.detail,
        )
        outcomes.append(outcome)
    return outcomes


def _process_stored(delivery: Delivery) -> Outcome:
    try:
        event = event_from_payload(
            delivery.event, delivery.payload, delivery.delivery_id, delivery.hook_id
        )
    except Exception as error:  # stored by an older hookrunner, say: record why, once
        reason = error if isinstance(error, BadDelivery) else f"{type(error).__name__}: {error}"
        detail = f"stored payload unreadable: {reason}"
        with write_transaction():
            Delivery.objects.set_outcome(delivery.pk, Status.FAILED, detail)
        return Outcome(delivery.delivery_id, Status.FAILED, detail)
    return process(delivery.pk, event, pipelines_in_force())
