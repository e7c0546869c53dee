"""How `manage.py purge` deletes (the rules of what goes are in runner.ops.purge): a batch
at a time, each batch a write transaction of its own, timed, and paced on SQLite; log
chunks in primary-key ranges of at most CHUNK_BATCH rows and about CHUNK_BYTES of text;
everything else in pages of primary keys, each page read once the one before it has
been dealt with.

Measured on SQLite (2 cores), 10,000 runs x 3 steps x 20 chunks to purge, a process
writing a row every 10 ms meanwhile: 200-byte chunks, 9 s, the longest transaction
38-58 ms (a WAL checkpoint at commit makes the worst ones), the writer's worst wait 37-55
ms; 4 KiB chunks (2.8 GB), 18 s, 37 ms, 20 ms. 300 runs of 64 KiB chunks (1.2 GB): 6 s,
43 ms, 30 ms.
"""

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet

from runner.models import LogChunk
from runner.models.db import write_transaction

# Log chunks per transaction: at most this many rows, and about this much text (64 KiB
# chunks: 128 a transaction; a 10 MiB step log is about 160 chunks).
CHUNK_BATCH = 2000
CHUNK_BYTES = 8 * 1024 * 1024


@dataclass
class Transactions:
    """The write transactions of one purge: how many, and the longest."""

    count: int = 0
    longest: float = 0.0

    @contextmanager
    def one(self) -> Iterator[None]:
        """One batch's write transaction, timed from holding the lock to committing."""
        with write_transaction():
            started = time.monotonic()
            yield
        elapsed = time.monotonic() - started
        self.count += 1
        self.longest = max(self.longest, elapsed)
        if connection.vendor == "sqlite":
            # Writers in other processes (the receiver, workers) poll for SQLite's lock,
            # sleeping longer each time: back to back, batches kept one waiting 530 ms;
            # with this pause, at most about one batch (60 ms). PostgreSQL locks rows.
            time.sleep(elapsed)


def pages(pks: QuerySet, size: int, newest_first: bool = False) -> Iterator[list[int]]:
    """The primary keys `pks` (a flat values_list) `size` at a time, in ascending order or
    `newest_first`; each page is read when the caller asks for it, after the one before
    it has been dealt with."""
    ordered = pks.order_by("-pk" if newest_first else "pk")
    after = "pk__lt" if newest_first else "pk__gt"
    last = None
    while page := list((ordered if last is None else ordered.filter(**{after: last}))[:size]):
        last = page[-1]
        yield page


def chunk_ranges(
    chunks: list[tuple[int, int]], stored: dict[int, int | None]
) -> Iterator[tuple[int, int]]:
    """(first, last) primary keys of consecutive runs of `chunks`, (pk, step id) in pk
    order, each of at most CHUNK_BATCH rows and about CHUNK_BYTES of text. A chunk's size
    is guessed from what its step stored (`stored`: bytes by step id, None if unknown,
    as for a step its lost worker never finished: then the largest a chunk gets)."""
    per_step = Counter(step for _, step in chunks)
    size = {
        step: LogChunk.MOST_BYTES if stored.get(step) is None else stored[step] / count
        for step, count in per_step.items()
    }
    batch: list[int] = []
    text = 0.0
    for pk, step in chunks:
        if batch and (len(batch) == CHUNK_BATCH or text + size[step] > CHUNK_BYTES):
            yield batch[0], batch[-1]
            batch, text = [], 0.0
        batch.append(pk)
        text += size[step]
    if batch:
        yield batch[0], batch[-1]


def batches[T](items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
