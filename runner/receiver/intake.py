"""What happens to an authenticated delivery: stored first, deduplicated, then processed."""

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

from runner.config.github import Event
from runner.config.pipelines import Config, Pipeline, match
from runner.config.store import pipelines_store
from runner.config.text import counted
from runner.models import RECEIVED_COLUMNS, Delivery, clipped
from runner.models.db import write_transaction
from runner.runs.lifecycle import create_runs

logger = logging.getLogger(__name__)
Status = Delivery.Status

# A delivery still marked received this long after it arrived was cut off mid-processing
# (its process died), so a redelivery may process it again.
ABANDONED_AFTER = timedelta(minutes=1)


class InvalidPipelines(RuntimeError):
    """No valid pipelines file was ever loaded, so nothing can be matched."""


@dataclass(frozen=True)
class Answer:
    """The receiver's reply to a delivery it authenticated and parsed."""

    delivery_id: str
    status: str
    detail: str
    http_status: int
    runs: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "delivery": self.delivery_id,
            "status": self.status,
            "runs": self.runs,
            "detail": self.detail,
        }


def receive(event: Event, config: Config | None) -> Answer:
    """Store, then process `event` against `config` (None: no valid pipelines file yet)."""
    try:
        pk = _store(event)
    except IntegrityError:
        return _receive_again(event, config)
    return _process(pk, event, config)


def _store(event: Event) -> int:
    # Its own committed transaction: whatever happens next, the delivery is on record.
    with write_transaction():
        return Delivery.objects.insert_received(
            delivery_id=event.delivery_id,
            event=event.name,
            action=event.action,
            hook_id=event.hook_id,
            repository=event.repository,
            sender=event.sender,
            ref=event.ref,
            payload=event.payload,
        )


def _receive_again(event: Event, config: Config | None) -> Answer:
    original = Delivery.objects.originals().get(delivery_id=event.delivery_id)
    if _claim_retry(original):
        return _process(original.pk, event, config)
    detail = _repeat_detail(original)
    with write_transaction():
        Delivery.objects.create(
            **{name: getattr(original, name) for name in RECEIVED_COLUMNS},
            **clipped(Delivery, detail=detail),
            payload={},
            status=Status.DUPLICATE,
            original=original,
        )
    _log(event, Status.DUPLICATE, detail)
    http_status = _http_status(original.event, original.status)
    run_ids = list(original.runs.order_by("pk").values_list("pk", flat=True))
    return Answer(event.delivery_id, Status.DUPLICATE, detail, http_status, run_ids)


def _claim_retry(original: Delivery) -> bool:
    """Take a failed or abandoned delivery for processing again; only one caller wins."""
    abandoned = (
        original.status == Status.RECEIVED
        and original.received_at < timezone.now() - ABANDONED_AFTER
    )
    if original.status != Status.FAILED and not abandoned:
        return False
    with write_transaction():
        claimed = Delivery.objects.filter(
            pk=original.pk, status=original.status, attempts=original.attempts
        ).update(status=Status.RECEIVED, attempts=F("attempts") + 1, detail="")
    return claimed == 1


def _repeat_detail(original: Delivery) -> str:
    if original.status == Status.RECEIVED:
        return "delivery is already being processed"
    return f"delivery was already {original.status}: {original.detail}"


def _process(pk: int, event: Event, config: Config | None) -> Answer:
    try:
        status, detail, starting = _decide(event, config)
        # Runs, their tasks and the outcome commit together: a 2xx means all are queued.
        with write_transaction():
            run_ids = create_runs(pk, event, starting)
            Delivery.objects.set_outcome(pk, status, detail)
    except Exception as error:
        run_ids = []
        logger.exception("processing failed delivery=%s", event.delivery_id)
        status = Status.FAILED
        detail = f"processing failed, redeliver once fixed: {type(error).__name__}: {error}"
        with write_transaction():
            Delivery.objects.set_outcome(pk, status, detail)
    _log(event, status, detail)
    return Answer(event.delivery_id, status, detail, _http_status(event.name, status), run_ids)


def _decide(event: Event, config: Config | None) -> tuple[str, str, list[Pipeline]]:
    """The delivery's outcome, its one-line detail, and the pipelines it starts."""
    if event.is_ping:
        return Status.ACCEPTED, f"pong: hook {event.hook_id or '?'} reached hookrunner", []
    if not event.is_acted_on:
        return Status.IGNORED, f"hookrunner does not act on {event.name} events", []
    if config is None:
        raise InvalidPipelines(pipelines_store().error)
    verdicts = match(config, event)
    if not verdicts:
        return Status.IGNORED, f"no pipelines for {event.repository} in {config.source}", []
    starting = [verdict.pipeline for verdict in verdicts if verdict.starts]
    if not starting:
        reasons = "; ".join(f"{v.pipeline.name}: {v.reason}" for v in verdicts)
        return Status.IGNORED, f"no pipeline matched: {reasons}", []
    names = ", ".join(pipeline.name for pipeline in starting)
    return Status.ACCEPTED, f"started {counted(len(starting), 'run')}: {names}", starting


def _http_status(event_name: str, status: str) -> int:
    if status == Status.FAILED:
        return 500
    return 200 if event_name == "ping" else 202


def _log(event: Event, status: str, detail: str) -> None:
    logger.info(
        "delivery=%s event=%s repository=%s outcome=%s detail=%s",
        event.delivery_id,
        event.name,
        event.repository or "-",
        status,
        detail,
    )
