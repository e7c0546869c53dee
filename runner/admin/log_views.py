"""What the run page's script fetches of a step's output (a range of its lines, the lines
holding a text), and the raw logs the page links to, streamed."""

from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404

from runner.admin.ansi import ansi_lines
from runner.admin.log_lines import lines_html, stored_logs
from runner.models import LogChunk, Run, Step

# Lines sent at most per request; "show all" asks again for what came before.
MOST_LINES = 5000
# Matches listed at most for one search: a search for "e" lists a page, not a log.
MOST_MATCHES = 1000
# A text searched for is cut to this: a search is for a word or a phrase, not a page.
MOST_SEARCHED = 200
# Chunks (of LogChunk.MOST_BYTES) read from the database at a time while streaming or
# searching: about a MiB held at once, however large the log.
CHUNKS_AT_ONCE = 16


def step_lines(run: Run, number: int, first: int, last: int) -> dict[str, Any]:
    """Lines `first` to `last` of step `number` (from 1) of `run`, the latest MOST_LINES
    of them at most, as HTML; with the numbers sent and the step's number of lines."""
    step = _step_of(run, number)
    log = stored_logs([step.pk])[step.pk]
    last = min(last, log.total)
    first = max(first, last - MOST_LINES + 1, 1)
    lines = log.lines(first, last)
    return {"first": first, "last": last, "total": log.total, "html": lines_html(number, lines)}


def step_search(run: Run, number: int, wanted: str) -> dict[str, Any]:
    """The lines of step `number` holding `wanted`, whatever its case: the first
    MOST_MATCHES of them, numbered as on the page, as HTML; `more` when there are more."""
    step = _step_of(run, number)
    needle = wanted[:MOST_SEARCHED].lower()
    found: list[dict[str, Any]] = []
    if needle:
        for line, text in _lines_holding(_texts(step), needle):
            if len(found) == MOST_MATCHES:
                return {"matches": found, "more": True}
            (html,) = ansi_lines(text) or [""]
            found.append({"line": line, "html": html})
    return {"matches": found, "more": False}


def _lines_holding(texts: Iterable[str], needle: str) -> Iterator[tuple[int, str]]:
    """The number and text of each line of `texts` (chunks of output) holding `needle`
    (lower case). A line cut between chunks is searched whole; a chunk without the needle
    is only counted."""
    number, carried = 1, ""
    for text in texts:
        block = carried + text
        whole, newline, carried = block.rpartition("\n")
        if newline and needle in whole.lower():
            for offset, line in enumerate(whole.split("\n")):
                if needle in line.lower():
                    yield number + offset, line
        number += whole.count("\n") + len(newline)
    if carried and needle in carried.lower():
        yield number, carried


def step_raw(run: Run, number: int) -> StreamingHttpResponse:
    """Step `number`'s output as it printed it, escapes included, streamed."""
    step = _step_of(run, number)
    return _attachment(_texts(step), f"run-{run.pk}-step-{number}.log")


def run_raw(run: Run) -> StreamingHttpResponse:
    """The output of every step of `run`, each under a line with its number and name."""
    steps = list(run.steps.only("pk", "index", "name"))
    chunks = (
        LogChunk.objects.filter(step__run=run)
        .order_by("step__index", "seq")
        .values_list("step_id", "text")
        .iterator(chunk_size=CHUNKS_AT_ONCE)
    )
    return _attachment(_run_log(steps, chunks), f"run-{run.pk}.log")


def _run_log(steps: list[Step], chunks: Iterator[tuple[int, str]]) -> Iterator[str]:
    upcoming = iter(steps)
    current, ends_line = None, True
    for step_id, text in chunks:
        while current != step_id:
            step = next(upcoming)
            yield _heading(step, ends_line)
            current, ends_line = step.pk, True
        yield text
        ends_line = text.endswith("\n")
    for step in upcoming:  # the steps after the last that printed
        yield _heading(step, ends_line)
        ends_line = True


def _heading(step: Step, ends_line: bool) -> str:
    # A step's last line may have no newline: its heading still starts a line.
    return f"{'' if ends_line else chr(10)}## {step.index + 1}. {step.name}\n"


def _attachment(texts: Iterable[str], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(texts, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _step_of(run: Run, number: int) -> Step:
    return get_object_or_404(Step.objects.only("pk"), run=run, index=number - 1)


def _texts(step: Step) -> Iterator[str]:
    chunks = LogChunk.objects.filter(step=step).order_by("seq").values_list("text", flat=True)
    return chunks.iterator(chunk_size=CHUNKS_AT_ONCE)
