import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from django.db import connections, transaction

# SQLite lets one writer in at a time; threads of one process that queue on this lock
# instead of on SQLite's busy-retry sleeps cut the receiver's p99 several-fold (DESIGN.md).
_sqlite_writer = threading.Lock()


@contextmanager
def write_transaction(using: str = "default") -> Iterator[None]:
    """A transaction for writes, serialised within this process when the database is SQLite."""
    lock = _sqlite_writer if connections[using].vendor == "sqlite" else nullcontext()
    with lock, transaction.atomic(using=using):
        yield
