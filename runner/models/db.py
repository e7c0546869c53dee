"""Writing to the database: one writer at a time on SQLite, and values cut to fit."""

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from typing import Any

from django.db import connections, models, transaction


class SQLiteWriter:
    """SQLite lets one writer in at a time. Writers that queue here instead of in SQLite's
    busy handler, which sleeps 1, 2, 5, 10... ms between tries, are let in as soon as the
    one before commits: threads of a process on a lock, processes on an flock of a file
    next to the database (with two receiver processes, SQLite's sleeps made p99 a tenth of
    a second). Re-entrant: a transition may run inside its caller's write transaction."""

    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.descriptor: int | None = None
        self.pid = 0

    @contextmanager
    def held(self, lock_path: str | None) -> Iterator[None]:
        with self.thread_lock:
            outermost = self.depth == 0 and lock_path is not None
            if outermost:
                fcntl.flock(self._descriptor(lock_path), fcntl.LOCK_EX)
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
                if outermost:
                    fcntl.flock(self._descriptor(lock_path), fcntl.LOCK_UN)

    def _descriptor(self, lock_path: str) -> int:
        # A descriptor inherited across fork shares its lock with the parent's: each
        # process opens its own.
        if self.descriptor is None or self.pid != os.getpid():
            self.descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self.pid = os.getpid()
        return self.descriptor


_sqlite_writer = SQLiteWriter()


@contextmanager
def write_transaction(using: str = "default") -> Iterator[None]:
    """A transaction for writes; one at a time across this machine's processes when the
    database is SQLite."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        lock = nullcontext()
    elif connection.is_in_memory_db():
        lock = _sqlite_writer.held(None)  # only this process sees it
    else:
        lock = _sqlite_writer.held(f"{connection.settings_dict['NAME']}-writer.lock")
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
