"""A delivery's headers and body: its signature checked, its body decoded (JSON or a
form's payload field), and the Event it carries. Pure functions, no ORM."""

import hmac
import json
import string
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from runner.config.github import SIGNATURE_PREFIX, BadDelivery, Event, event_from_payload, sign

MAX_DELIVERY_ID_LENGTH = 100
MAX_EVENT_NAME_LENGTH = 64


def signature_format_problem(header: str | None) -> str | None:
    """Why `header` cannot be an X-Hub-Signature-256 value, or None."""
    if not header:
        return "missing X-Hub-Signature-256 header (sha1 X-Hub-Signature alone is not accepted)"
    digest = header.removeprefix(SIGNATURE_PREFIX)
    if digest == header or len(digest) != 64 or not set(digest) <= set(string.hexdigits):
        return "malformed X-Hub-Signature-256 header (expected sha256= and 64 hex digits)"
    return None


def signing_secret(secrets: Iterable[str], body: bytes, header: str) -> str | None:
    """Which of `secrets` signed `body` as `header` says, or None."""
    found = None
    # Compare against every candidate so timing does not reveal which secret was close.
    for secret in secrets:
        if secret and hmac.compare_digest(sign(secret, body), header.lower()):
            found = secret
    return found


def decode_payload(content_type: str, body: bytes) -> dict[str, Any]:
    """The JSON object of a delivery, from a JSON or a form-encoded body."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        text = _decode_text(body)
        fields = parse_qs(text, keep_blank_values=True)
        if "payload" not in fields:
            raise BadDelivery("form-encoded body has no payload field")
        text = fields["payload"][0]
    elif media_type in ("application/json", ""):
        text = _decode_text(body)
    else:
        raise BadDelivery(f"unsupported content type {media_type!r} (use application/json)")
    try:
        payload = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise BadDelivery(f"body is not valid JSON: {error}") from None
    except RecursionError:
        raise BadDelivery("body is not valid JSON: nested too deeply") from None
    if not isinstance(payload, dict):
        raise BadDelivery(f"payload is a JSON {type(payload).__name__}, not an object")
    if "\\u0000" in text:
        # PostgreSQL cannot store NUL in JSON text; a commit message may hold one.
        payload = _without_nul(payload)
    return payload


def _refuse_constant(name: str) -> None:
    raise BadDelivery(f"body is not valid JSON: {name} is not a JSON value")


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadDelivery(f"body is not UTF-8: {error.reason} at byte {error.start}") from None


def parse_event(headers: Mapping[str, str], body: bytes) -> Event:
    """Read an authenticated delivery into an Event; BadDelivery says what is missing."""
    name = headers.get("X-GitHub-Event", "").strip()
    delivery_id = headers.get("X-GitHub-Delivery", "").strip()
    if not name:
        raise BadDelivery("missing X-GitHub-Event header")
    if not delivery_id:
        raise BadDelivery("missing X-GitHub-Delivery header")
    if len(delivery_id) > MAX_DELIVERY_ID_LENGTH or not delivery_id.isprintable():
        raise BadDelivery("X-GitHub-Delivery is not a delivery id")
    if len(name) > MAX_EVENT_NAME_LENGTH or not name.isprintable():
        raise BadDelivery("X-GitHub-Event is not an event name")
    payload = decode_payload(headers.get("Content-Type", ""), body)
    return event_from_payload(name, payload, delivery_id, headers.get("X-GitHub-Hook-ID", ""))
