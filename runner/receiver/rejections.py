"""The log of refused requests, bounded per minute so a flood cannot fill the disk."""

import hashlib
import logging

from django.conf import settings
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from runner.config.text import storable
from runner.models import DroppedRejections, RejectedRequest, clipped
from runner.models.db import write_transaction

logger = logging.getLogger(__name__)

MAX_HEADERS = 50
MAX_HEADER_LENGTH = 500
REDACTED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


def record_rejection(
    request: HttpRequest, http_status: int, reason: str, body: bytes | None
) -> None:
    """Store what was refused and why; past the per-minute bound, only count it."""
    remote_addr = request.META.get("REMOTE_ADDR", "")
    delivery_id = storable(request.headers.get("X-GitHub-Delivery", ""))
    event = storable(request.headers.get("X-GitHub-Event", ""))
    logger.warning(
        "rejected delivery=%s event=%s remote=%s status=%d reason=%s",
        delivery_id or "-",
        event or "-",
        remote_addr,
        http_status,
        reason,
    )
    minute = timezone.now().replace(second=0, microsecond=0)
    with write_transaction():
        stored = RejectedRequest.objects.filter(received_at__gte=minute).count()
        if stored >= settings.REJECTIONS_STORED_PER_MINUTE:
            _count_dropped(minute)
            return
        rejected = RejectedRequest.objects.create(
            http_status=http_status,
            **clipped(
                RejectedRequest,
                reason=storable(reason),
                remote_addr=remote_addr,
                delivery_id=delivery_id,
                event=event,
            ),
            headers=_bounded_headers(request),
            body_sha256=hashlib.sha256(body).hexdigest() if body is not None else "",
            body_bytes=len(body) if body is not None else _declared_length(request),
        )
        # Keep only the newest: a flood that lasts for weeks still fits in a fixed size.
        oldest_kept = rejected.pk - settings.REJECTIONS_KEPT
        RejectedRequest.objects.filter(pk__lte=oldest_kept).delete()


def _count_dropped(minute) -> None:
    # Create-if-missing then increment, safe when several processes race on one minute.
    DroppedRejections.objects.bulk_create(
        [DroppedRejections(minute=minute, count=0)], ignore_conflicts=True
    )
    DroppedRejections.objects.filter(minute=minute).update(count=F("count") + 1)


def _bounded_headers(request: HttpRequest) -> dict[str, str]:
    headers = {}
    for name, value in list(request.headers.items())[:MAX_HEADERS]:
        redact = name.lower() in REDACTED_HEADERS
        headers[name] = "[redacted]" if redact else storable(value[:MAX_HEADER_LENGTH])
    return headers


def _declared_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0
