"""A step's output on its way to LogChunk rows: masked, decoded, bounded, batched."""

import codecs
import time
from collections.abc import Sequence

from runner.executor import SecretMasker
from runner.models import LogChunk, Step

FLUSH_BYTES = 64 * 1024
FLUSH_SECONDS = 0.5


class StepLog:
    """Takes raw output as the executor reads it (b"" on a quiet poll) and stores it."""

    def __init__(self, step: Step, secrets: Sequence[str], limit_bytes: int) -> None:
        self.step = step
        self.limit_bytes = limit_bytes
        self.masker = SecretMasker(secrets)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending: list[str] = []
        self.pending_size = 0
        self.stored = 0
        self.seq = 0
        self.flushed_at = time.monotonic()

    def write(self, data: bytes) -> None:
        self.step.output_bytes += len(data)
        self._add(self.masker.feed(data))
        now = time.monotonic()
        if self.pending_size >= FLUSH_BYTES or (
            self.pending and now - self.flushed_at >= FLUSH_SECONDS
        ):
            self.flush()

    def close(self) -> None:
        self._add(self.masker.flush())
        self._add_text(self.decoder.decode(b"", final=True))
        self.flush()

    def flush(self) -> None:
        self.flushed_at = time.monotonic()
        if not self.pending:
            return
        LogChunk.objects.create(step=self.step, seq=self.seq, text="".join(self.pending))
        self.seq += 1
        self.pending, self.pending_size = [], 0

    def _add(self, data: bytes) -> None:
        if data:
            self._add_text(self.decoder.decode(data))

    def _add_text(self, text: str) -> None:
        if not text:
            return
        # PostgreSQL text cannot hold NUL; a step may print anything.
        text = text.replace("\x00", "\ufffd")
        room = self.limit_bytes - self.stored
        if self.step.dropped_bytes or len(text) > room:
            self.step.dropped_bytes += len(text) - max(room, 0)
            if self.step.dropped_bytes > len(text) - max(room, 0):
                return
            text = (
                text[:room]
                + f"\n[output truncated: a step keeps at most {self.limit_bytes} characters]\n"
            )
        self.stored += len(text)
        self.pending.append(text)
        self.pending_size += len(text)
