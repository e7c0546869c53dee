"""A step's output on its way to LogChunk rows: masked, decoded, bounded, batched; kept in
memory, within the same bounds, while the database is away.

Output is stored in order, in pieces of at most LogChunk.MOST_BYTES (whole characters),
the pieces of a flush in one transaction: a step that floods its output is stored in one
transaction per FLUSH_BYTES, not one per piece; a quiet one still every FLUSH_SECONDS."""

import codecs
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from runner.config.text import storable
from runner.execution.database import UNAVAILABLE, Outage
from runner.execution.processes import SecretMasker
from runner.models import LogChunk, Step
from runner.models.db import write_transaction

# A flood costs more per commit than per byte: this much output is stored in one
# transaction, and this bounds the memory output waits in.
FLUSH_BYTES = 16 * LogChunk.MOST_BYTES
FLUSH_SECONDS = 0.5
# One LogChunk row: the run page reads output in chunks of at most this.
PIECE_BYTES = LogChunk.MOST_BYTES
MARKER = (
    "\n[hookrunner: {dropped} bytes of output dropped here;"
    " the first {head} and the last {tail} bytes are kept]\n"
)


class StepLog:
    """Takes raw output as the executor reads it (b"" on a quiet poll) and stores it.

    At most `limit_bytes` of UTF-8 text are kept: the first half as it comes, then one
    marker chunk that counts what was dropped, then the latest output. The tail is stored
    as it comes too, so a running step can be watched; its oldest chunks are deleted as
    newer ones arrive."""

    def __init__(
        self, step: Step, secrets: Sequence[str], limit_bytes: int, database: Outage | None = None
    ) -> None:
        self.step = step
        self.database = database or Outage(limit=float("inf"))
        self.limit_bytes = limit_bytes
        self.masker = SecretMasker(secrets)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = _Pieces()
        self.seq = 0
        self.flushed_at = time.monotonic()
        self.head_bytes = 0
        # Set once the head is full; the marker row itself waits for the first byte dropped.
        self.marker_seq: int | None = None
        self.marker_text = ""
        self.tail: deque[tuple[int, int]] = deque()  # (seq, bytes) of the stored tail chunks
        self.tail_bytes = 0

    @property
    def tail_budget(self) -> int:
        # Not limit - limit // 2: a character straddling the head's cut goes to the tail.
        return self.limit_bytes - self.head_bytes

    def write(self, data: bytes) -> None:
        self.step.output_bytes += len(data)
        self._add(self.masker.feed(data))
        now = time.monotonic()
        if self.pending.bytes >= FLUSH_BYTES or (
            self.pending.bytes and now - self.flushed_at >= FLUSH_SECONDS
        ):
            self.flush()

    def end(self) -> None:
        """The step ended: what its output still held back joins what waits to be stored.
        Then store_rest(), which needs the database."""
        self._add(self.masker.flush())
        self._add_text(self.decoder.decode(b"", final=True))

    def store_rest(self) -> None:
        """Store what is left, and cut the tail to its budget; OperationalError or
        InterfaceError, changing nothing, if the database does not answer (call again)."""
        self._store_pending()
        if self.tail_bytes > self.tail_budget:
            with self._unchanged_on_failure():
                self._trim_oldest()

    def flush(self) -> None:
        """Store what waits, unless the database is away: then it waits on, bounded."""
        self.flushed_at = time.monotonic()
        if not self.pending.bytes:
            return
        if not self.database.attempt(self._store_pending, defer=False):
            self._bound_pending()

    def _store_pending(self) -> None:
        if not self.pending.bytes:
            return
        pieces = self.pending.taken()
        with self._unchanged_on_failure():
            if self.marker_seq is None:
                self._store(pieces)
            else:
                self._store_tail(pieces, self.pending.bytes)
        self.pending = _Pieces()

    @contextmanager
    def _unchanged_on_failure(self) -> Iterator[None]:
        """What this log knows of its stored rows, put back if storing fails."""
        saved = (self.seq, deque(self.tail), self.tail_bytes, self.step.dropped_bytes)
        marker_text = self.marker_text
        try:
            yield
        except UNAVAILABLE:
            self.seq, self.tail, self.tail_bytes, self.step.dropped_bytes = saved
            self.marker_text = marker_text
            raise

    def _bound_pending(self) -> None:
        """Past the head, what waits in memory keeps to the tail's budget, as stored
        output does: its oldest part is dropped and counted."""
        if self.marker_seq is None or self.pending.bytes <= self.tail_budget:
            return
        pieces = _last_pieces(self.pending.taken(), self.pending.bytes, self.tail_budget)
        kept = _Pieces.of(pieces)
        self.step.dropped_bytes += self.pending.bytes - kept.bytes
        self.pending = kept

    def _add(self, data: bytes) -> None:
        if data:
            self._add_text(self.decoder.decode(data))

    def _add_text(self, text: str) -> None:
        if not text:
            return
        text = storable(text)
        size = _utf8_len(text)
        if self.marker_seq is None:
            room = self.limit_bytes // 2 - self.head_bytes
            if size > room:
                text, size = self._end_head(text, size, room)
            else:
                self.head_bytes += size
        self.pending.add(text, size)

    def _end_head(self, text: str, size: int, room: int) -> tuple[str, int]:
        """Store the head with what of `text` fits in `room`; the rest and its size."""
        head = text.encode()[:room].decode(errors="ignore")  # whole characters only
        head_size = _utf8_len(head)
        if head:
            self.head_bytes += head_size
            self.pending.add(head, head_size)
        self.flush()
        self.marker_seq, self.seq = self.seq, self.seq + 1
        return text[len(head) :], size - head_size

    def _store(self, pieces: list[tuple[str, int]]) -> range:
        """Insert `pieces` as the next chunks, in one transaction; their seqs."""
        seqs = range(self.seq, self.seq + len(pieces))
        LogChunk.objects.insert_pieces(self.step.pk, seqs.start, [text for text, _size in pieces])
        self.seq = seqs.stop
        return seqs

    def _store_tail(self, pieces: list[tuple[str, int]], size: int) -> None:
        # One transaction: a reader never sees the tail's new end with a stale count.
        with write_transaction():
            self._drop_passed_chunks(size)
            if size > self.tail_budget:
                pieces = _last_pieces(pieces, size, self.tail_budget)
                self.step.dropped_bytes += size - sum(kept for _text, kept in pieces)
            for seq, (_text, piece_size) in zip(self._store(pieces), pieces, strict=True):
                self.tail.append((seq, piece_size))
                self.tail_bytes += piece_size
            self._mark()

    def _drop_passed_chunks(self, arriving: int) -> None:
        """Delete the tail chunks that `arriving` more bytes push wholly out of the tail.

        The oldest kept chunk may reach further back: cutting it would mean reading it
        back on every flush, so that is done once, by close()."""
        passed = []
        while self.tail and self.tail_bytes - self.tail[0][1] + arriving >= self.tail_budget:
            seq, size = self.tail.popleft()
            passed.append(seq)
            self.tail_bytes -= size
            self.step.dropped_bytes += size
        if passed:
            LogChunk.objects.filter(step=self.step, seq__in=passed).delete()

    def _trim_oldest(self) -> None:
        """Cut the front of the oldest tail chunk so the tail is exactly its budget."""
        seq, size = self.tail[0]
        chunk = LogChunk.objects.get(step=self.step, seq=seq)
        text = _last_bytes(chunk.text, size, size - (self.tail_bytes - self.tail_budget))
        kept = _utf8_len(text)
        self.tail[0] = (seq, kept)
        self.tail_bytes -= size - kept
        self.step.dropped_bytes += size - kept
        with write_transaction():
            LogChunk.objects.filter(pk=chunk.pk).update(text=text)
            self._mark()

    def _mark(self) -> None:
        if not self.step.dropped_bytes:
            return
        text = MARKER.format(
            dropped=self.step.dropped_bytes, head=self.head_bytes, tail=self.tail_bytes
        )
        if text == self.marker_text:
            return
        if self.marker_text:
            LogChunk.objects.filter(step=self.step, seq=self.marker_seq).update(text=text)
        else:
            LogChunk.objects.create(step=self.step, seq=self.marker_seq, text=text)
        self.marker_text = text


class _Pieces:
    """Output waiting to be stored, cut as it comes into pieces of at most PIECE_BYTES:
    storing it copies nothing more, so memory holds about one flush."""

    def __init__(self) -> None:
        self.bytes = 0
        self.closed: list[tuple[str, int]] = []
        # The last piece, still filling: its parts are joined once it is full or taken.
        self.parts: list[str] = []
        self.part_bytes = 0

    @classmethod
    def of(cls, pieces: list[tuple[str, int]]) -> "_Pieces":
        """Pieces already cut, as they are."""
        made = cls()
        made.closed = pieces
        made.bytes = sum(size for _text, size in pieces)
        return made

    def add(self, text: str, size: int) -> None:
        self.bytes += size
        if size <= PIECE_BYTES - self.part_bytes:
            # It fits in the piece still filling: nothing to cut, nor to encode for it.
            self.parts.append(text)
            self.part_bytes += size
            return
        for index, (piece, piece_size) in enumerate(
            _cut(text, size, PIECE_BYTES - self.part_bytes)
        ):
            if index:
                self._close()
            if piece:
                self.parts.append(piece)
                self.part_bytes += piece_size

    def taken(self) -> list[tuple[str, int]]:
        """Every piece, (text, UTF-8 bytes), in order; what is added later starts a new one."""
        self._close()
        return self.closed

    def _close(self) -> None:
        if self.parts:
            self.closed.append(("".join(self.parts), self.part_bytes))
            self.parts, self.part_bytes = [], 0


def _cut(text: str, size: int, room: int) -> list[tuple[str, int]]:
    """`text` (`size` bytes in UTF-8) in whole characters: at most `room` bytes first
    (maybe none), then pieces of at most PIECE_BYTES; each with its size."""
    ascii_only = text.isascii()  # then characters are bytes and the text is cut as it is
    data = text if ascii_only else text.encode()
    pieces, start, end = [], 0, room
    while start < size or not pieces:
        end = min(end, size)
        while not ascii_only and end < size and data[end] & 0xC0 == 0x80:
            end -= 1  # not inside a character: back to its first byte
        piece = data[start:end]
        pieces.append((piece if ascii_only else piece.decode(), end - start))
        start, end = end, end + PIECE_BYTES
    return pieces


def _last_pieces(pieces: list[tuple[str, int]], size: int, keep: int) -> list[tuple[str, int]]:
    """The end of `pieces` (`size` bytes in all) within `keep` bytes, in whole characters;
    only the first piece kept is cut, nothing is joined."""
    start = 0
    while start < len(pieces) and size - pieces[start][1] >= keep:
        size -= pieces[start][1]
        start += 1
    if start == len(pieces):
        return []
    text, piece_size = pieces[start]
    first = _last_bytes(text, piece_size, keep - (size - piece_size))
    kept = [(first, _utf8_len(first))] if first else []
    return kept + pieces[start + 1 :]


def _utf8_len(text: str) -> int:
    # isascii() is a flag lookup; most output is ASCII and then needs no encoding.
    return len(text) if text.isascii() else len(text.encode())


def _last_bytes(text: str, size: int, keep: int) -> str:
    """The end of `text` (`size` bytes in UTF-8) within `keep` bytes, in whole characters."""
    return text.encode()[size - keep :].decode(errors="ignore")
