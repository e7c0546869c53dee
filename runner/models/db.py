"""Writing to the database: one writer at a time on SQLite, and values cut to fit."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from typing import Any

from django.db import connections, models, transaction

# SQLite lets one writer in at a time; threads of one process that queue on this lock
# instead of on SQLite's busy-retry sleeps cut the receiver's p99 several-fold (DESIGN.md).
# Re-entrant: a transition may run inside its caller's write transaction.
_sqlite_writer = threading.RLock()


@contextmanager
def write_transaction(using: str = "default") -> Iterator[None]:
    """A transaction for writes, serialised within this process when the database is SQLite."""
    lock = _sqlite_writer if connections[using].vendor == "sqlite" else nullcontext()
    with lock, transaction.atomic(using=using):
        yield


def clipped(model: type[models.Model], **values: Any) -> dict[str, Any]:
    """`values`, each string cut to its field's max_length: what a client sends always fits."""
    limits = _max_lengths(model)
    return {
        name: value[: limits[name]] if name in limits and isinstance(value, str) else value
        for name, value in values.items()
    }


@cache
def _max_lengths(model: type[models.Model]) -> dict[str, int]:
    return {
        field.name: field.max_length
        for field in model._meta.concrete_fields
        if getattr(field, "max_length", None)
    }
