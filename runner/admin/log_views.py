"""What the run page's script fetches of a step's output: a range of its lines."""

from typing import Any

from django.shortcuts import get_object_or_404

from runner.admin.log_lines import lines_html, stored_logs
from runner.models import Run, Step

# Lines sent at most per request; "show all" asks again for what came before.
MOST_LINES = 5000


def step_lines(run: Run, number: int, first: int, last: int) -> dict[str, Any]:
    """Lines `first` to `last` of step `number` (from 1) of `run`, the latest MOST_LINES
    of them at most, as HTML; with the numbers sent and the step's number of lines."""
    step = get_object_or_404(Step.objects.only("pk"), run=run, index=number - 1)
    log = stored_logs([step.pk])[step.pk]
    last = min(last, log.total)
    first = max(first, last - MOST_LINES + 1, 1)
    lines = log.lines(first, last)
    return {"first": first, "last": last, "total": log.total, "html": lines_html(number, lines)}
