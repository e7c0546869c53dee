"""GitHub's formats: the events a delivery carries, read from its payload into typed Events,
refs and commit ids, and how GitHub signs a body. Pure functions, no ORM; the receiver
reads headers and bodies into these (runner.receiver.parsing)."""

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

SIGNATURE_PREFIX = "sha256="
ACTED_ON_EVENTS = frozenset({"push", "pull_request"})
# owner/name as GitHub allows them.
REPOSITORY_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
# A full commit id: SHA-1, or SHA-256 for repositories that use it.
COMMIT_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"
PULL_PREFIX = "refs/pull/"
TYPE_NAMES = {str: "string", int: "number", bool: "boolean"}
# GitHub's push payload lists at most this many commits, and (taken as the cap here) at
# most this many paths in each commit's added, modified and removed lists.
MAX_PAYLOAD_COMMITS = 2048
MAX_PAYLOAD_FILES = 3000
FILE_LISTS = ("added", "modified", "removed")
# Pull requests are numbered from 1; runs keep the number in a 32-bit column.
MAX_PR_NUMBER = 2**31 - 1
# The longest value a name read here (a ref, a login, a repository) may have. GitHub's are
# far shorter (a ref 255 bytes, a login 39 characters); a step gets them as environment
# variables, and Linux refuses to start a process with one over 128 KiB.
MAX_NAME_LENGTH = 1024
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

    @property
    def pinged_hook(self) -> str:
        """The webhook a ping tests, as its payload names it (`hook_id`, then `hook.id`),
        else as its X-GitHub-Hook-ID header does; "" if neither. Only numbers count:
        GitHub's hook ids are."""
        hook = self.payload.get("hook")
        named = [self.payload.get("hook_id"), hook.get("id") if isinstance(hook, dict) else None]
        numbers = [str(value) for value in named if type(value) is int]
        return numbers[0] if numbers else self.hook_id


def is_commit_sha(text: str) -> bool:
    return COMMIT_SHA.fullmatch(text) is not None


def branch_of(ref: str) -> str | None:
    """The branch a ref names (refs/heads/NAME), or None for any other ref."""
    return ref.removeprefix(BRANCH_PREFIX) if ref.startswith(BRANCH_PREFIX) else None


def tag_of(ref: str) -> str | None:
    """The tag a ref names (refs/tags/NAME), or None for any other ref."""
    return ref.removeprefix(TAG_PREFIX) if ref.startswith(TAG_PREFIX) else None


def short_ref(ref: str) -> str:
    """A ref as GitHub Actions' GITHUB_REF_NAME has it: main, v1.2, 12/merge."""
    for prefix in (BRANCH_PREFIX, TAG_PREFIX, PULL_PREFIX):
        if ref.startswith(prefix):
            return ref.removeprefix(prefix)
    return ref


def sign(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


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
    number = _required(payload, int, "pull_request", "number")
    if not 1 <= number <= MAX_PR_NUMBER:
        raise BadDelivery(
            f"pull_request payload field number is not a pull request number (1 to {MAX_PR_NUMBER})"
        )
    return {
        "pr_number": number,
        "sha": _required(payload, str, "pull_request", "pull_request", "head", "sha"),
        "ref": f"refs/pull/{number}/merge",
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
    return _within_limit(value, event, path)


def _optional(payload: dict[str, Any], kind: type, *path: str) -> Any:
    value = _dig(payload, path)
    if isinstance(value, kind):
        return _within_limit(value, "", path)
    return kind()


def _within_limit(value: Any, event: str, path: tuple[str, ...]) -> Any:
    if isinstance(value, str) and len(value) > MAX_NAME_LENGTH:
        field = " ".join(filter(None, [event, "payload field", ".".join(path)]))
        raise BadDelivery(f"{field} is longer than {MAX_NAME_LENGTH} characters")
    return value
