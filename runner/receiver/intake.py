"""What happens to an authenticated delivery: stored first, deduplicated, then processed
(runner.runs.processing, which a worker's upkeep also uses for deliveries left behind)."""

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError

from runner.config.github import Event
from runner.config.repositories import Config
from runner.models import RECEIVED_COLUMNS, Delivery, clipped
from runner.models.db import write_transaction
from runner.runs import processing

logger = logging.getLogger(__name__)
Status = Delivery.Status
# The answer's status for a repeat of a delivery that is still being processed.
PROCESSING = "processing"
# Not a 2xx: GitHub shows the repeat as failed and `manage.py reconcile` asks for it again
# until the delivery is processed (by its process, or a worker's upkeep once abandoned).
PROCESSING_HTTP_STATUS = 409


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
    """Store, then process `event` against `config` (None: no valid pipelines file yet).

    A delivery that starts nothing (a ping, an event no pipeline wants) is stored with its
    outcome: one transaction instead of two, for most deliveries."""
    try:
        decision = processing.decide(event, config)
    except Exception:
        decision = None  # decided again once stored, by processing, which records why
    settled = decision is not None and not decision.starting
    try:
        pk = _store(event, decision.status, decision.detail) if settled else _store(event)
    except IntegrityError:
        original = Delivery.objects.originals().filter(delivery_id=event.delivery_id).first()
        if original is None:
            raise  # not a repeat: some other constraint refused the row
        return _receive_again(event, original, config)
    if settled:
        outcome = processing.Outcome(event.delivery_id, decision.status, decision.detail)
    elif decision is None:
        outcome = processing.process(pk, event, config)
    else:
        outcome = processing.process_decided(pk, event, decision)
    return _answer(event, outcome)


def _store(event: Event, status: str = Status.RECEIVED, detail: str = "") -> int:
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
            status=status,
            detail=detail,
        )


def _receive_again(event: Event, original: Delivery, config: Config | None) -> Answer:
    retry = original.status == Status.FAILED or processing.abandoned(original)
    if retry and processing.claim(original):
        return _answer(event, processing.process(original.pk, event, config))
    if retry:
        # Another process claimed it between our read and our claim: it is processing it.
        original.refresh_from_db()
    if original.status == Status.RECEIVED:
        detail = "delivery is still being processed: not a 2xx, so that a redelivery tries again"
        answer = Answer(event.delivery_id, PROCESSING, detail, PROCESSING_HTTP_STATUS)
    else:
        detail = f"delivery was already {original.status}: {original.detail}"
        run_ids = list(original.runs.order_by("pk").values_list("pk", flat=True))
        http_status = _http_status(original.event, original.status)
        answer = Answer(event.delivery_id, Status.DUPLICATE, detail, http_status, run_ids)
    with write_transaction():
        Delivery.objects.create(
            **{name: getattr(original, name) for name in RECEIVED_COLUMNS},
            **clipped(Delivery, detail=detail),
            payload={},
            status=Status.DUPLICATE,
            original=original,
        )
    _log(event, answer.status, detail)
    return answer


def _answer(event: Event, outcome: processing.Outcome) -> Answer:
    _log(event, outcome.status, outcome.detail)
    http_status = _http_status(event.name, outcome.status)
    return Answer(event.delivery_id, outcome.status, outcome.detail, http_status, outcome.run_ids)


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
