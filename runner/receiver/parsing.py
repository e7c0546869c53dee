"""A delivery's headers and body: its signature checked, its body decoded (JSON or a
form's payload field), and the Event it carries. Pure functions, no ORM."""

import hmac
import json
import math
import re
import string
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from runner.config.github import SIGNATURE_PREFIX, BadDelivery, Event, event_from_payload, sign
from runner.config.text import storable

MAX_DELIVERY_ID_LENGTH = 100
MAX_EVENT_NAME_LENGTH = 64
# GitHub's hook ids are numbers; the column holds 32 characters.
MAX_HOOK_ID_LENGTH = 32
# GitHub's payloads nest a handful of levels. SQLite stores JSON nested at most 1000 levels
# deep (2000 before 3.45), PostgreSQL as deep as its stack allows: far below both.
MAX_JSON_DEPTH = 200
# Where a JSON text may hold a surrogate: only an escape makes one, as UTF-8 cannot.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
SURROGATE = re.compile("[\ud800-\udfff]")


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
    payload = _loads(text)
    if not isinstance(payload, dict):
        raise BadDelivery(f"payload is a JSON {type(payload).__name__}, not an object")
    # What passes must be storable as it is, in SQLite and in PostgreSQL.
    if _may_nest_deeper(text, MAX_JSON_DEPTH) and _deeper_than(payload, MAX_JSON_DEPTH):
        raise BadDelivery(
            f"body is not valid JSON: nested too deeply (over {MAX_JSON_DEPTH} levels)"
        )
    if SURROGATE_ESCAPE.search(text) and (problem := _lone_surrogate(payload)):
        # Python reads "\\udc80" alone, but no Unicode text (nor PostgreSQL) holds it.
        raise BadDelivery(problem)
    if "\\u0000" in text:
        # PostgreSQL cannot store NUL in JSON text; a commit message may hold one.
        payload = _without_nul(payload)
    return payload


def _loads(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except BadDelivery:
        raise
    except json.JSONDecodeError as error:
        raise BadDelivery(f"body is not valid JSON: {error}") from None
    except RecursionError:
        raise BadDelivery("body is not valid JSON: nested too deeply") from None
    except ValueError:
        # Python reads integers of at most sys.get_int_max_str_digits() (4300) digits.
        raise BadDelivery("body is not valid JSON: a number has too many digits") from None


def _refuse_constant(name: str) -> None:
    raise BadDelivery(f"body is not valid JSON: {name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        # 1e400 would be stored as Infinity, which is no JSON (nor a PostgreSQL number).
        raise BadDelivery(f"body is not valid JSON: number {text[:30]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def _may_nest_deeper(text: str, limit: int) -> bool:
    # Counting is cheap; most payloads have fewer brackets than the limit in all.
    return text.count("[") + text.count("{") > limit


def _deeper_than(payload: dict[str, Any], limit: int) -> bool:
    level: list[Any] = [payload]
    for _ in range(limit):
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def _lone_surrogate(value: Any, path: str = "") -> str | None:
    """Where `value` holds a lone surrogate, as a one-line reason; None if nowhere."""
    if isinstance(value, str):
        if found := SURROGATE.search(value):
            return f"payload field {path} holds a lone surrogate ({_escaped(found.group())})"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if found := SURROGATE.search(key):
                where = f" in {path}" if path else ""
                return f"a field name{where} holds a lone surrogate ({_escaped(found.group())})"
            if problem := _lone_surrogate(item, f"{path}.{_shown(key)}" if path else _shown(key)):
                return problem
    if isinstance(value, list):
        for index, item in enumerate(value):
            if problem := _lone_surrogate(item, f"{path}[{index}]"):
                return problem
    return None


def _escaped(character: str) -> str:
    return f"\\u{ord(character):04x}"


def _shown(key: str) -> str:
    """A field name as a reason shows it: on one line, and not too long."""
    shown = key if key.isprintable() else key.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 40 else shown[:39] + "…"


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
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
    hook_id = headers.get("X-GitHub-Hook-ID", "").strip()
    if len(hook_id) > MAX_HOOK_ID_LENGTH or not hook_id.isprintable():
        raise BadDelivery("X-GitHub-Hook-ID is not a hook id")
    payload = decode_payload(headers.get("Content-Type", ""), body)
    return event_from_payload(name, payload, delivery_id, hook_id)
