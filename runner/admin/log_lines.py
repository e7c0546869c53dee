"""A step's stored output as numbered lines, read a range at a time.

A 10 MiB log is 160 chunks; the page shows a few hundred of its lines. So the database
counts each chunk's newlines (one query for all the steps of a run, sending numbers, not
text), and only the chunks that hold the lines asked for are read. Lines are numbered
from 1 in the output as stored (past STEP_OUTPUT_LIMIT, the marker of what was dropped
is a line too). A range starts in the terminal's plain style: the colour in force at the
end of an earlier range is not carried into it. A line's time is when the chunk it
starts in was stored. Lines of GitHub Actions' `::error` and `::warning` commands are
found by the database among the chunks, and read only from the chunks holding them.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Q, Value
from django.db.models.functions import Length, Replace, Right
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from runner.admin.ansi import ESCAPE, ansi_lines
from runner.models import LogChunk, Step

# The lines the page draws of a step it opens at its end, and of each page fetched.
PAGE_LINES = 500
# At most this many chunks (of LogChunk.MOST_BYTES) are read for one range of lines, so
# lines as long as a whole log cannot make a page of megabytes.
PAGE_CHUNKS = 8
# GitHub Actions' workflow commands a step prints to flag a line: `::error::message`,
# `::warning file=app.js,line=10::message`, at the start of a line.
ANNOTATION = re.compile(r"::(error|warning)(?:[ \t]+([^:]*))?::(.*)")
# The run page lists this many of them at most, found in this many chunks at most: a
# step printing thousands of warnings costs a bounded read.
MOST_ANNOTATIONS = 50
ANNOTATION_CHUNKS = 20


@dataclass(frozen=True)
class ChunkShape:
    pk: int
    chars: int
    newlines: int
    ends_line: bool
    stored_at: datetime


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

    def times(self) -> list[tuple[int, int]]:
        """For each chunk, the number of the first line that starts in it and when it was
        stored (ms since the epoch): a line's time is that of the last chunk listed that
        starts at or before it."""
        listed, before = [], 0
        for index, chunk in enumerate(self.chunks):
            continued = index > 0 and not self.chunks[index - 1].ends_line
            listed.append((before + (2 if continued else 1), epoch_ms(chunk.stored_at)))
            before += chunk.newlines
        return listed

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

    def first_piece_of(self, index: int) -> tuple[int, bool]:
        """The number of the line the first piece of chunk `index` belongs to, and whether
        that line starts in it."""
        before = sum(chunk.newlines for chunk in self.chunks[:index])
        return before + 1, index == 0 or self.chunks[index - 1].ends_line

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
        "step_id", "pk", Length("text"), newlines, Right(F("text"), 1), "created_at"
    )
    shapes: dict[int, list[ChunkShape]] = {step_id: [] for step_id in step_ids}
    for step_id, pk, chars, count, last, stored_at in rows:
        shapes[step_id].append(ChunkShape(pk, chars, count, last == "\n", stored_at))
    return {step_id: StoredLog(step_id, tuple(chunks)) for step_id, chunks in shapes.items()}


def epoch_ms(moment: datetime) -> int:
    """A moment as the page's script counts time: milliseconds since the epoch."""
    return round(moment.timestamp() * 1000)


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


@dataclass(frozen=True)
class Annotation:
    """A line of a step's output that flags an error or a warning."""

    kind: str
    step_number: int
    step_name: str
    line: int
    # Where it says the problem is ("app.js:10"), "" when it does not say.
    where: str
    message: str


def annotations(steps: list[Step], logs: dict[int, StoredLog]) -> tuple[list[Annotation], bool]:
    """The first MOST_ANNOTATIONS error and warning lines of `steps` (their output as
    `logs` has it), in order, and whether there are more. The database picks the chunks
    holding one; a command cut between two chunks is not found."""
    where_is = {
        chunk.pk: (step, logs[step.pk], index)
        for step in steps
        for index, chunk in enumerate(logs[step.pk].chunks)
    }
    flagged = LogChunk.objects.filter(
        Q(text__contains="::error") | Q(text__contains="::warning"), step__in=steps
    )
    rows = flagged.order_by("step__index", "seq").values_list("pk", "text")[:ANNOTATION_CHUNKS]
    found = [
        annotation
        for pk, text in rows
        if pk in where_is
        for annotation in _annotations_in(text, *where_is[pk])
    ]
    return found[:MOST_ANNOTATIONS], len(found) > MOST_ANNOTATIONS


def _annotations_in(text: str, step: Step, log: StoredLog, index: int) -> list[Annotation]:
    number, starts_line = log.first_piece_of(index)
    found = []
    for offset, piece in enumerate(text.split("\n")):
        flag = ANNOTATION.match(ESCAPE.sub("", piece)) if offset or starts_line else None
        if flag:
            kind, parameters, message = flag.groups()
            line = number + offset
            where = _where(parameters or "")
            found.append(Annotation(kind, step.index + 1, step.name, line, where, message))
    return found


def _where(parameters: str) -> str:
    """`file=app.js,line=10,col=5` as "app.js:10"."""
    named = dict(part.partition("=")[::2] for part in parameters.split(",") if "=" in part)
    file, line = named.get("file", "").strip(), named.get("line", "").strip()
    return f"{file}:{line}" if file and line else file
