"""Delivery and Run rows made straight through the ORM, for tests that need rows in the
database without a signed push; every field a test does not give gets a dull default."""

import uuid

from runner.models import Delivery, Run


def make_delivery(**fields) -> Delivery:
    """A push delivery with an empty payload and a fresh delivery id."""
    values = {"delivery_id": str(uuid.uuid4()), "event": "push", "payload": {}, **fields}
    return Delivery.objects.create(**values)


def make_run(
    delivery: Delivery | None = None,
    repository: str = "acme/webapp",
    pipeline: str = "test",
    status: str = "queued",
    **fields,
) -> Run:
    """A push run of `pipeline` in `repository` with an empty definition and a fresh task
    id, of a new delivery unless given one."""
    values = {"event": "push", "definition": {}, "task_id": str(uuid.uuid4()), **fields}
    return Run.objects.create(
        delivery=delivery or make_delivery(),
        repository=repository,
        pipeline=pipeline,
        status=status,
        **values,
    )
