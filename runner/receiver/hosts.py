"""Requests naming a host hookrunner does not serve (ALLOWED_HOSTS): refused with the
reason and the setting to change, logged once per host a minute, and recorded among
rejected requests, where Django alone would answer a bare HTML 400 and say nothing."""

import logging
import time

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse

from runner.config.text import storable
from runner.receiver.intake import Answer
from runner.receiver.rejections import record_rejection

logger = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 60
# Hosts remembered for the once-a-minute log; a flood of made-up names cannot grow it.
REMEMBERED_HOSTS = 1000
_logged_at: dict[str, float] = {}


class RefusedHostMiddleware:
    """First of the middleware: nothing else may ask for the host before it is checked."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.get_host()
        except DisallowedHost:
            return refused(request)
        return self.get_response(request)


def refused(request: HttpRequest) -> HttpResponse:
    host = storable(request.META.get("HTTP_HOST", ""))[:200]
    reason = f"host {host!r} is not in ALLOWED_HOSTS"
    _log_once_a_minute(host, reason)
    record_rejection(request, 400, reason, None)
    hint = f"{reason}; add it to ALLOWED_HOSTS, or set PUBLIC_URL to the URL people use"
    if request.path.lstrip("/").startswith(settings.WEBHOOK_PATH):
        delivery_id = request.headers.get("X-GitHub-Delivery", "")
        return JsonResponse(Answer(delivery_id, "rejected", hint, 400).as_json(), status=400)
    return HttpResponse(f"{hint}\n", status=400, content_type="text/plain; charset=utf-8")


def _log_once_a_minute(host: str, reason: str) -> None:
    now = time.monotonic()
    if now - _logged_at.get(host, -LOG_EVERY_SECONDS) < LOG_EVERY_SECONDS:
        return
    if len(_logged_at) >= REMEMBERED_HOSTS:
        _logged_at.clear()
    _logged_at[host] = now
    logger.warning(
        "refused a request: %s (%s); add it to ALLOWED_HOSTS, or set PUBLIC_URL to the URL "
        "people and GitHub use; said once a minute per host",
        reason,
        ", ".join(settings.ALLOWED_HOSTS) or "empty",
    )
