"""A step's stored output as numbered lines, read a range at a time.

A 10 MiB log is 160 chunks; the page shows a few hundred of its lines. So the database
counts each chunk's newlines (one query for all the steps of a run, sending numbers, not
text), and only the chunks that hold the lines asked for are read. Lines are numbered
from 1 in the output as stored (past STEP_OUTPUT_LIMIT, the marker of what was dropped
is a line too). A range starts in the terminal's plain style: the colour in force at the
end of an earlier range is not carried into it.
"""

from dataclasses import dataclass

from django.db.models import F, Value
from django.db.models.functions import Length, Replace, Right
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from runner.admin.ansi import ansi_lines
from runner.models import LogChunk

# The lines the page draws of a step it opens at its end, and of each page fetched.
PAGE_LINES = 500
# At most this many chunks (of LogChunk.MOST_BYTES) are read for one range of lines, so
# lines as long as a whole log cannot make a page of megabytes.
PAGE_CHUNKS = 8


@dataclass(frozen=True)
class ChunkShape:
    pk: int
    chars: int
    newlines: int
    ends_line: bool


@dataclass(frozen=True)
class StoredLog:
    """Where the lines of a step's output are: its chunks' pks and newline counts."""

    step_id: int
    chunks: tuple[ChunkShape, ...]

    @property
    def chars(self) -> int:
        return sum(chunk.chars for chunk in self.chunks)

    @property
    def total(self) -> int:
        """Its number of lines; an unfinished last line counts."""
        if not self.chunks:
            return 0
        ends = self.chunks[-1].ends_line
        return sum(chunk.newlines for chunk in self.chunks) + (0 if ends else 1)

    @property
    def unfinished(self) -> bool:
        """Its last line has no newline yet: what comes next continues it."""
        return bool(self.chunks) and not self.chunks[-1].ends_line

    def tail(self) -> tuple[int, int]:
        """The first and last number of the lines shown of it at first: its last ones."""
        if len(self.chunks) > PAGE_CHUNKS:
            start = len(self.chunks) - PAGE_CHUNKS
            earliest = self._first_line_in(start)
        else:
            earliest = 1
        return max(earliest, self.total - PAGE_LINES + 1, 1), self.total

    def lines(self, first: int, last: int) -> list[tuple[int, SafeString]]:
        """Lines `first` to `last` (clamped to what there is), numbered, as HTML."""
        first, last = max(first, 1), min(last, self.total)
        if first > last:
            return []
        (shown,) = read_lines([LineRange(self, first, last)])
        return shown

    def chunks_of(self, first: int, last: int) -> tuple[list[int], int]:
        """The pks of the chunks that hold lines `first` to `last`, and how many newlines
        of the first of them come before line `first`."""
        start, skipped = self._chunk_of_line(first)
        end, _ = self._chunk_of_line(last + 1)  # where line `last` ends
        return [chunk.pk for chunk in self.chunks[start : end + 1]], skipped

    def _chunk_of_line(self, number: int) -> tuple[int, int]:
        """The index of the chunk where line `number` starts, and the newlines of that
        chunk before it."""
        before = 0
        for index, chunk in enumerate(self.chunks):
            if before + chunk.newlines >= number - 1:
                return index, number - 1 - before
            before += chunk.newlines
        return len(self.chunks) - 1, 0  # past its last newline: its unfinished last line

    def _first_line_in(self, index: int) -> int:
        """The number of the first line that starts within chunk `index`."""
        before = sum(chunk.newlines for chunk in self.chunks[:index])
        return before + (1 if self.chunks[index - 1].ends_line else 2)


@dataclass(frozen=True)
class LineRange:
    log: StoredLog
    first: int
    last: int


def read_lines(ranges: list[LineRange]) -> list[list[tuple[int, SafeString]]]:
    """The numbered lines of each range as HTML, their chunks read in one query."""
    wanted = []
    for each in ranges:
        first, last = max(each.first, 1), min(each.last, each.log.total)
        wanted.append((first, last, *each.log.chunks_of(first, last)) if first <= last else None)
    pks = [pk for plan in wanted if plan for pk in plan[2]]
    texts = dict(LogChunk.objects.filter(pk__in=pks).values_list("pk", "text")) if pks else {}
    return [_numbered(texts, *plan) if plan else [] for plan in wanted]


def _numbered(
    texts: dict[int, str], first: int, last: int, pks: list[int], skipped: int
) -> list[tuple[int, SafeString]]:
    text = "".join(texts[pk] for pk in pks)
    if skipped:
        text = text.split("\n", skipped)[-1]
    return list(enumerate(ansi_lines(text)[: last - first + 1], start=first))


def stored_logs(step_ids: list[int], upto_chunk: int | None = None) -> dict[int, StoredLog]:
    """The shape of each step's output (up to chunk `upto_chunk`), in one query."""
    newlines = Length("text") - Length(Replace("text", Value("\n"), Value("")))
    chunks = LogChunk.objects.filter(step_id__in=step_ids)
    if upto_chunk is not None:
        chunks = chunks.filter(pk__lte=upto_chunk)
    rows = chunks.order_by("step_id", "seq").values_list(
        "step_id", "pk", Length("text"), newlines, Right(F("text"), 1)
    )
    shapes: dict[int, list[ChunkShape]] = {step_id: [] for step_id in step_ids}
    for step_id, pk, chars, count, last in rows:
        shapes[step_id].append(ChunkShape(pk, chars, count, last == "\n"))
    return {step_id: StoredLog(step_id, tuple(chunks)) for step_id, chunks in shapes.items()}


def line_html(step_number: int, number: int, html: str) -> SafeString:
    """One line of step `step_number` with its number, a link to itself."""
    anchor = f"step-{step_number}-L{number}"
    return format_html(
        '<span class="hr-line" id="{}"><a class="hr-ln" href="#{}" data-n="{}"></a>{}\n</span>',
        anchor,
        anchor,
        number,
        html,
    )


def lines_html(step_number: int, lines: list[tuple[int, SafeString]]) -> SafeString:
    return mark_safe("".join(line_html(step_number, n, html) for n, html in lines))  # noqa: S308
