"""GitHub's side of a delivery: signatures and event parsing. Pure functions, no ORM."""

import hashlib
import hmac
import json
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

SIGNATURE_PREFIX = "sha256="
ACTED_ON_EVENTS = frozenset({"push", "pull_request"})
MAX_DELIVERY_ID_LENGTH = 100
MAX_EVENT_NAME_LENGTH = 64
# owner/name as GitHub allows them.
REPOSITORY_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
TYPE_NAMES = {str: "string", int: "number", bool: "boolean"}
# GitHub's push payload lists at most this many commits, and (taken as the cap here) at
# most this many paths in each commit's added, modified and removed lists.
MAX_PAYLOAD_COMMITS = 2048
MAX_PAYLOAD_FILES = 3000
FILE_LISTS = ("added", "modified", "removed")
# Why a push's changed files are unknown (Event.changed_files is None).
NO_COMMITS = "no commits"
COMMITS_CAPPED = "commits capped"
FILES_CAPPED = "files capped"
COMMITS_UNREADABLE = "commits unreadable"


class BadDelivery(ValueError):
    """A delivery that cannot be used; the message is the one-line reason sent back."""


@dataclass(frozen=True)
class Event:
    """What hookrunner needs of one delivery, read once from headers and payload."""

    delivery_id: str
    name: str
    payload: dict[str, Any] = field(repr=False)
    hook_id: str = ""
    action: str = ""
    repository: str = ""
    sender: str = ""
    ref: str = ""
    sha: str = ""
    deleted: bool = False
    pr_number: int | None = None
    head_ref: str = ""
    base_ref: str = ""
    head_repository: str = ""
    # A push's changed files: every path its listed commits add, modify or remove, sorted;
    # None when unknown, and then `changed_files_unknown` says why (one of NO_COMMITS,
    # COMMITS_CAPPED, FILES_CAPPED, COMMITS_UNREADABLE).
    changed_files: tuple[str, ...] | None = None
    changed_files_unknown: str = ""

    @property
    def is_ping(self) -> bool:
        return self.name == "ping"

    @property
    def is_acted_on(self) -> bool:
        return self.name in ACTED_ON_EVENTS


def sign(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


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


def event_from_payload(
    name: str, payload: dict[str, Any], delivery_id: str = "", hook_id: str = ""
) -> Event:
    """The Event of a payload already decoded (a stored delivery's, say)."""
    common = {
        "delivery_id": delivery_id,
        "name": name,
        "payload": payload,
        "hook_id": hook_id,
        "action": _optional(payload, str, "action"),
        "repository": _optional(payload, str, "repository", "full_name"),
        "sender": _optional(payload, str, "sender", "login"),
    }
    reader = EVENT_READERS.get(name)
    return Event(**common, **(reader(payload) if reader else {}))


def _read_push(payload: dict[str, Any]) -> dict[str, Any]:
    _required(payload, str, "push", "repository", "full_name")
    return {
        "ref": _required(payload, str, "push", "ref"),
        "sha": _required(payload, str, "push", "after"),
        "deleted": _optional(payload, bool, "deleted") or False,
        **_changed_files(payload.get("commits")),
    }


def _changed_files(commits: Any) -> dict[str, Any]:
    """The union of the listed commits' added, modified and removed paths, or why unknown."""
    if commits is None or commits == []:
        return {"changed_files": None, "changed_files_unknown": NO_COMMITS}
    if not isinstance(commits, list):
        return {"changed_files": None, "changed_files_unknown": COMMITS_UNREADABLE}
    if len(commits) >= MAX_PAYLOAD_COMMITS:
        return {"changed_files": None, "changed_files_unknown": COMMITS_CAPPED}
    files: set[str] = set()
    for commit in commits:
        if not isinstance(commit, dict):
            return {"changed_files": None, "changed_files_unknown": COMMITS_UNREADABLE}
        for paths in (commit.get(key, []) for key in FILE_LISTS):
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                return {"changed_files": None, "changed_files_unknown": COMMITS_UNREADABLE}
            if len(paths) >= MAX_PAYLOAD_FILES:
                return {"changed_files": None, "changed_files_unknown": FILES_CAPPED}
            files.update(paths)
    return {"changed_files": tuple(sorted(files)), "changed_files_unknown": ""}


def _read_pull_request(payload: dict[str, Any]) -> dict[str, Any]:
    _required(payload, str, "pull_request", "repository", "full_name")
    _required(payload, str, "pull_request", "action")
    head_ref = _required(payload, str, "pull_request", "pull_request", "head", "ref")
    return {
        "pr_number": _required(payload, int, "pull_request", "number"),
        "sha": _required(payload, str, "pull_request", "pull_request", "head", "sha"),
        "ref": f"refs/pull/{payload['number']}/merge",
        "head_ref": head_ref,
        "base_ref": _required(payload, str, "pull_request", "pull_request", "base", "ref"),
        # A fork that was deleted leaves head.repo null: treat it as a foreign repository.
        "head_repository": _optional(payload, str, "pull_request", "head", "repo", "full_name"),
    }


EVENT_READERS = {"push": _read_push, "pull_request": _read_pull_request}


def _dig(payload: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = payload
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _required(payload: dict[str, Any], kind: type, event: str, *path: str) -> Any:
    value = _dig(payload, path)
    # bool is an int to Python; a number field holding true is still wrong.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        dotted = ".".join(path)
        problem = "is missing" if value is None else f"is not a {TYPE_NAMES[kind]}"
        raise BadDelivery(f"{event} payload field {dotted} {problem}")
    return value


def _optional(payload: dict[str, Any], kind: type, *path: str) -> Any:
    value = _dig(payload, path)
    if isinstance(value, kind):
        return value
    return kind()
