"""Replacing a leaked value with *** in stored step output, for the day a secret leaks.

The value is never stored, logged or put in an exception's message: a Redaction row keeps
who, when, which runs and how many chunks changed. Nor is it ever sent to the database:
the search is done in Python, so no query carries it (as a parameter, it would be kept by
Django's query log with DEBUG on, and by PostgreSQL's own statement logs).

Two passes, neither holding more than BATCH chunks in memory:
1. A read-only pass over the scope's steps, SCAN_STEPS at a time, their chunks in (step,
   seq) order (the order of the (step, seq) index: no sort), finds exactly the steps
   whose output, chunks joined in seq order, contains the value: within a chunk or across
   chunk boundaries, however many chunks an occurrence spans.
2. Each step found is rewritten in a transaction of its own: its chunks are read in seq
   order, a batch at a time, and only those that change are written.

Measured on 2,000 steps of 20 chunks of 4 KiB (160 MiB), value in 40 steps: 0.15 s on
SQLite, 0.4 to 0.6 s on a local PostgreSQL; reading the text is most of it. Asking the
database which chunks contain the value (INSTR, STRPOS) and having it send only each
chunk's first and last len(value) - 1 characters was slower on both: 0.35 s and 0.7 s for
the first pass alone. It would only pay off with PostgreSQL across a slow network.
"""

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter

from django.db.models import F, QuerySet

from runner.config.text import counted, storable
from runner.models import LogChunk, Redaction, Run, Step, clipped
from runner.models.db import write_transaction

logger = logging.getLogger(__name__)

REPLACEMENT = "***"
# Fewer characters would match all over everyone's output ("a", "the", "200").
MIN_LENGTH = 4
# Run ids named in Redaction.scope; past that, the count and the first ones.
SCOPE_IDS = 20
# Chunks read at a time: a few MiB at 64 KiB a chunk.
BATCH = 64
# Steps searched with one query by the first pass.
SCAN_STEPS = 100


def redact(value: str, runs: QuerySet[Run] | None, done_by: str) -> Redaction:
    """Replace every occurrence of `value` in the stored output of `runs` (None: all runs)
    with "***", occurrences split across chunks included; the Redaction that records it.

    `value` needs at least 4 characters besides leading and trailing whitespace, or
    ValueError: a shorter one would replace text all over the output. Matching is exact
    and case-sensitive, leftmost first, like str.replace. A NUL in `value` matches U+FFFD,
    which is what StepLog stores for it.

    Each step is redacted in one transaction, which also adds its changed chunks to
    Redaction.chunks_changed: after a crash the row says what was done, and redacting again
    finishes the job. Output that a running step stores after its step was redacted is not
    covered: redact again once the run has ended.
    """
    value = _checked(value)
    in_scope = (
        Step.objects.all() if runs is None else Step.objects.filter(run__in=runs.values("pk"))
    )
    redaction = Redaction.objects.create(**clipped(Redaction, done_by=done_by), scope=_scope(runs))
    steps = _steps_containing(value, in_scope)
    for step_id in steps:
        _redact_step(step_id, value, redaction)
    redaction.refresh_from_db()
    running = in_scope.filter(status=Step.Status.RUNNING).count()
    logger.info(
        "redaction %s by %s (%s): %s changed in %s",
        redaction.pk,
        redaction.done_by,
        redaction.scope,
        counted(redaction.chunks_changed, "chunk"),
        counted(len(steps), "step"),
    )
    if running:
        logger.warning(
            "redaction %s: %s still running; output they store from now on is not redacted",
            redaction.pk,
            counted(running, "step was", "steps were"),
        )
    return redaction


def _checked(value: str) -> str:
    if not isinstance(value, str):
        raise TypeError("the value to redact must be a str")
    if not value.strip():
        raise ValueError("refusing to redact an empty or whitespace-only value")
    if len(value.strip()) < MIN_LENGTH:
        raise ValueError(
            f"refusing to redact a value shorter than {MIN_LENGTH} characters (not counting"
            " leading and trailing whitespace): it would replace text all over the output"
        )
    return storable(value)


def _scope(runs: QuerySet[Run] | None) -> str:
    """Redaction.scope: "all runs", "run 3", "runs 3, 7, 9", or "1234 runs: 3, 7, 9, …"."""
    if runs is None:
        return "all runs"
    ids = sorted(runs.values_list("pk", flat=True))
    named = ", ".join(str(pk) for pk in ids[:SCOPE_IDS])
    if not ids:
        return "no runs"
    if len(ids) == 1:
        return f"run {named}"
    if len(ids) <= SCOPE_IDS:
        return f"runs {named}"
    return f"{counted(len(ids), 'run')}: {named}, …"


def _steps_containing(value: str, steps: QuerySet[Step]) -> list[int]:
    """The ids of those `steps` whose output contains `value`."""
    found: list[int] = []
    after = 0
    while ids := list(
        steps.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:SCAN_STEPS]
    ):
        after = ids[-1]
        rows = (
            LogChunk.objects.filter(step_id__in=ids)
            .order_by("step_id", "seq")
            .values_list("step_id", "text")
            .iterator(chunk_size=BATCH)
        )
        for step_id, chunks in groupby(rows, key=itemgetter(0)):
            if _contains(chunks, value):
                found.append(step_id)
    return found


def _contains(chunks: Iterable[tuple[int, str]], value: str) -> bool:
    """Whether the output of one step's (key, text) chunks in order contains `value`."""
    edge = len(value) - 1
    before = ""  # the output's last `edge` characters so far
    for _, text in chunks:
        # An occurrence across the boundary starts within `before`, ends within text[:edge].
        if value in text or value in before + text[:edge]:
            return True
        before = (before + text[-edge:])[-edge:]
    return False


def _redact_step(step_id: int, value: str, redaction: Redaction) -> None:
    with write_transaction():
        changed = 0
        for pk, text in redacted_chunks(_chunks_of(step_id), value):
            LogChunk.objects.filter(pk=pk).update(text=text)
            changed += 1
        if changed:
            Redaction.objects.filter(pk=redaction.pk).update(
                chunks_changed=F("chunks_changed") + changed
            )


def _chunks_of(step_id: int) -> Iterator[tuple[int, str]]:
    """(pk, text) of a step's chunks in seq order, read BATCH at a time, with no cursor
    left open between batches; with `lock`, locked until the transaction ends (PostgreSQL)."""
    chunks = LogChunk.objects.select_for_update()
    after = -1
    while True:
        batch = list(
            chunks.filter(step_id=step_id, seq__gt=after)
            .order_by("seq")
            .values_list("pk", "seq", "text")[:BATCH]
        )
        yield from ((pk, text) for pk, _, text in batch)
        if len(batch) < BATCH:
            return
        after = batch[-1][1]


@dataclass
class _Chunk:
    key: int
    start: int  # where its text starts in the step's output
    text: str
    # (from, to, replacement) in its text, in order.
    cuts: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    def redacted(self) -> str:
        pieces, done = [], 0
        for begin, end, replacement in self.cuts:
            pieces += [self.text[done:begin], replacement]
            done = end
        pieces.append(self.text[done:])
        return "".join(pieces)


def redacted_chunks(chunks: Iterable[tuple[int, str]], value: str) -> Iterator[tuple[int, str]]:
    """(key, new text) of each chunk that redacting `value` changes, from one step's
    (key, text) chunks in order.

    The new texts joined equal the old ones joined with str.replace(value, "***"): an
    occurrence split across chunks leaves "***" in the chunk where it starts and is cut
    from the chunks after, which may end up empty. A chunk is yielded as soon as no later
    occurrence can reach it: besides the current chunk, only those holding the output's
    last len(value) - 1 characters are kept, however short they are.
    """
    size = len(value)
    held: deque[_Chunk] = deque()
    searched = 0  # where in the output the next occurrence can start, at the earliest
    carried = ""  # the output from `searched` on: shorter than `value`
    for key, text in chunks:
        held.append(_Chunk(key, searched + len(carried), text))
        window, base = carried + text, searched
        at = 0
        while (found := window.find(value, at)) >= 0:
            _cut(held, base + found, size)
            at = found + size
        searched = base + max(at, len(window) - size + 1)
        carried = window[searched - base :]
        while held and held[0].end <= searched:
            yield from _changed(held.popleft())
    while held:
        yield from _changed(held.popleft())


def _cut(held: Iterable[_Chunk], start: int, size: int) -> None:
    """Replace output[start : start + size] with "***", wherever its chunks are."""
    for chunk in held:
        begin, end = max(start, chunk.start), min(start + size, chunk.end)
        if begin < end:
            replacement = REPLACEMENT if begin == start else ""
            chunk.cuts.append((begin - chunk.start, end - chunk.start, replacement))


def _changed(chunk: _Chunk) -> Iterator[tuple[int, str]]:
    if chunk.cuts and (text := chunk.redacted()) != chunk.text:
        yield chunk.key, text
