"""README status badges: the last finished run of a pipeline as a shields.io-style SVG.

GET /badge/OWNER/REPO/PIPELINE.svg[?branch=NAME] needs no login and reveals only that
status. Anything unknown is a grey "unknown" badge with 200, so a README image never breaks.
"""

import hashlib
import re

from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.html import escape
from django.utils.http import quote_etag
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from runner.config.github import BRANCH_PREFIX
from runner.models import Run
from runner.models.statuses import look_of

# Camo (GitHub's image proxy) and browsers keep a badge this long, then revalidate with
# the ETag: a finished run shows within a minute, and a busy README costs one request per
# cache per minute, mostly answered 304.
CACHE_SECONDS = 60

UNKNOWN = "unknown"
UNKNOWN_COLOR = "#9f9f9f"
LABEL_COLOR = "#555"

# 11px Verdana averages about 6.5px a character; textLength makes the text fit that width.
CHAR_WIDTH = 6.5
PADDING = 10
HEIGHT = 20

# Characters XML 1.0 cannot carry at all, not even escaped (a %01 in the URL, say).
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def last_finished_status(repository: str, pipeline: str, branch: str = "") -> str | None:
    """The status of the run of `pipeline` that finished last, or None if none did.
    Repository names compare case-insensitively (GitHub's rule), pipelines exactly."""
    if "\x00" in repository + pipeline + branch:
        return None  # never stored, and PostgreSQL refuses it even in a comparison
    # One query, served by the run_badge_lookup index (LOWER(repository), pipeline,
    # finished_at DESC, id DESC WHERE finished_at IS NOT NULL); ?branch= then checks the
    # ref of each row that index yields, newest first.
    runs = Run.objects.alias(repository_lower=Lower("repository")).filter(
        repository_lower=repository.lower(), pipeline=pipeline, finished_at__isnull=False
    )
    if branch:
        runs = runs.filter(ref=BRANCH_PREFIX + branch)
    return runs.order_by("-finished_at", "-pk").values_list("status", flat=True).first()


def text_width(text: str) -> int:
    return round(len(text) * CHAR_WIDTH)


def render(label: str, message: str, color: str) -> str:
    """A flat badge: `label` on grey at the left, `message` on `color` at the right."""
    label, message = (NOT_XML.sub("\ufffd", text) for text in (label, message))
    label_text, message_text = text_width(label), text_width(message)
    label_width, message_width = label_text + PADDING, message_text + PADDING
    width = label_width + message_width
    label_x, message_x = label_width / 2, label_width + message_width / 2
    title = escape(f"{label}: {message}")
    label, message = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" '
        f'role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        '<linearGradient id="s" x2="0" y2="100%">'
        '<stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="{HEIGHT}" rx="3" fill="#fff"/>'
        "</clipPath>"
        '<g clip-path="url(#r)">'
        f'<rect width="{label_width}" height="{HEIGHT}" fill="{LABEL_COLOR}"/>'
        f'<rect x="{label_width}" width="{message_width}" height="{HEIGHT}" fill="{color}"/>'
        f'<rect width="{width}" height="{HEIGHT}" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" '
        'font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f"{_text(label_x, label_text, label)}{_text(message_x, message_text, message)}"
        "</g></svg>"
    )


def _text(x: float, length: int, escaped: str) -> str:
    """Text with shields' 1px shadow under it."""
    return (
        f'<text x="{x:g}" y="15" fill="#010101" fill-opacity=".3" textLength="{length}">'
        f"{escaped}</text>"
        f'<text x="{x:g}" y="14" textLength="{length}">{escaped}</text>'
    )


@csrf_exempt  # so that a POST is answered 405, not CSRF's 403
@require_safe
def badge(request: HttpRequest, owner: str, repo: str, pipeline: str) -> HttpResponse:
    status = last_finished_status(f"{owner}/{repo}", pipeline, request.GET.get("branch", ""))
    if status is None:
        message, color = UNKNOWN, UNKNOWN_COLOR
    else:
        known = status in Run.Status.values
        message = Run.Status(status).label if known else status
        color = look_of(status).badge_color or UNKNOWN_COLOR
    svg = render(pipeline, message, color).encode()
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    patch_cache_control(response, max_age=CACHE_SECONDS, public=True)
    etag = quote_etag(hashlib.sha256(svg).hexdigest()[:32])
    response["ETag"] = etag
    # Opened on its own, the SVG is a document of this site: it may load and run nothing.
    response["Content-Security-Policy"] = "default-src 'none'"
    return get_conditional_response(request, etag=etag, response=response)
