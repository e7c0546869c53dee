"""The receiver: authenticate, parse, hand over to intake, answer in milliseconds.

Every answer is JSON, an unexpected error's too (a 500 logged with its delivery id): the
webhook path never shows an HTML error page."""

import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from runner.config import github
from runner.config.store import pipelines_in_force
from runner.receiver import intake, parsing
from runner.receiver import secrets as webhook_secrets
from runner.receiver.rejections import record_rejection

logger = logging.getLogger(__name__)

READ_CHUNK_BYTES = 64 * 1024
# The answer's status when the receiver itself failed unexpectedly.
ERROR = "error"


class Rejection(Exception):
    def __init__(self, http_status: int, reason: str) -> None:
        super().__init__(reason)
        self.http_status = http_status
        self.reason = reason


@csrf_exempt
def receive_github(request: HttpRequest) -> JsonResponse:
    try:
        response = _receive(request)
    except Exception as error:
        delivery_id = request.headers.get("X-GitHub-Delivery", "")
        logger.exception("webhook failed delivery=%s", delivery_id or "-")
        detail = (
            f"hookrunner failed unexpectedly ({type(error).__name__}); "
            "the server log has the details"
        )
        answer = intake.Answer(delivery_id, ERROR, detail, 500)
        response = JsonResponse(answer.as_json(), status=answer.http_status)
    # Every answer was logged above (a line per delivery, refusal or error, tracebacks
    # included): Django's django.request need not log its 4xx and 5xx again.
    response._has_been_logged = True
    return response


def _receive(request: HttpRequest) -> JsonResponse:
    body = None
    try:
        if request.method != "POST":
            raise Rejection(405, f"method {request.method} not allowed, GitHub sends POST")
        body = read_capped_body(request, settings.WEBHOOK_MAX_BODY_BYTES)
        signature = request.headers.get("X-Hub-Signature-256")
        if problem := parsing.signature_format_problem(signature):
            raise Rejection(403, problem)
        config = pipelines_in_force()
        secret = parsing.signing_secret(webhook_secrets.accepted_secrets(config), body, signature)
        if secret is None:
            raise Rejection(403, "X-Hub-Signature-256 does not match any configured secret")
        event = parsing.parse_event(request.headers, body)
        if not webhook_secrets.secret_fits(config, secret, event.repository):
            raise Rejection(403, f"signed with a secret that is not {event.repository}'s")
    except github.BadDelivery as error:
        return _reject(request, Rejection(400, str(error)), body)
    except Rejection as rejection:
        return _reject(request, rejection, body)
    answer = intake.receive(event, config)
    return JsonResponse(answer.as_json(), status=answer.http_status)


def read_capped_body(request: HttpRequest, limit: int) -> bytes:
    """The raw body, refused as soon as it is known to exceed `limit` bytes."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Rejection(400, "Content-Length is not a number") from None
    if declared > limit:
        raise Rejection(413, f"body of {declared} bytes exceeds the {limit}-byte limit")
    chunks, size = [], 0
    while chunk := request.read(READ_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise Rejection(413, f"body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _reject(request: HttpRequest, rejection: Rejection, body: bytes | None) -> JsonResponse:
    record_rejection(request, rejection.http_status, rejection.reason, body)
    delivery_id = request.headers.get("X-GitHub-Delivery", "")
    answer = intake.Answer(delivery_id, "rejected", rejection.reason, rejection.http_status)
    response = JsonResponse(answer.as_json(), status=answer.http_status)
    if rejection.http_status == 405:
        response["Allow"] = "POST"
    return response
