"""GitHub's REST API over urllib, one request at a time, each answer classified: ok, worth
retrying, rate-limited (with how long to wait), or not worth retrying. No retries here:
callers decide (runner.outgoing.queue sends from tasks; manage.py reconcile asks once)."""

import json as jsonlib
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings

API_VERSION = "2022-11-28"
USER_AGENT = "hookrunner"
# Enough of an answer for its JSON and its message; a longer one is cut there.
MAX_ANSWER_BYTES = 1024 * 1024
# GitHub's secondary rate limits ask for at least a minute when they say nothing else.
DEFAULT_RATE_LIMIT_WAIT = 60.0


class Outcome(StrEnum):
    OK = "ok"
    RETRY = "retry"  # 5xx, 408, no answer (refused, reset, timed out)
    RATE_LIMITED = "rate_limited"  # 403/429 saying so: wait, then try again
    GIVE_UP = "give_up"  # any other 4xx, or a redirect (never followed: it would carry the token)


@dataclass(frozen=True)
class Response:
    """An answer, or (status None) the reason there was none. Header names lower-cased."""

    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    text: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    # One line for people: "HTTP 502: Bad Gateway", "timed out after 10s".
    reason: str
    # Seconds to wait before trying again, for RATE_LIMITED.
    wait: float | None = None


class GitHubError(Exception):
    """A request to GitHub's API that did not succeed; `verdict` says how."""

    def __init__(self, verdict: Verdict, response: Response) -> None:
        super().__init__(verdict.reason)
        self.verdict, self.response = verdict, response


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as it is: followed, it would take the token elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def api_url(path: str) -> str:
    """`path` under GITHUB_API_URL; a full URL (a Link header's next page) as it is."""
    if path.startswith(("https://", "http://")):
        return path
    return settings.GITHUB_API_URL.rstrip("/") + "/" + path.lstrip("/")


def api_headers(token: str) -> dict[str, str]:
    return {
        "Accept": "application/vnd.github+json",
        "Authorization": f"Bearer {token}",
        "X-GitHub-Api-Version": API_VERSION,
        "User-Agent": USER_AGENT,
    }


def request(method: str, path: str, token: str, json: Any = None, timeout: float = 10) -> Response:
    """One request to GitHub's API (GITHUB_API_URL, so GitHub Enterprise works too)."""
    headers = api_headers(token)
    body = None
    if json is not None:
        body = jsonlib.dumps(json).encode()
        headers["Content-Type"] = "application/json"
    return send(method, api_url(path), headers, body, timeout)


def send(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
) -> Response:
    """One HTTP request; never raises for what the network or the server did."""
    prepared = urllib.request.Request(url, data=body, headers=dict(headers), method=method)  # noqa: S310
    try:
        with _OPENER.open(prepared, timeout=timeout) as answer:
            return _response(answer.status, answer.headers, answer.read(MAX_ANSWER_BYTES))
    except urllib.error.HTTPError as error:
        with error:
            return _response(error.code, error.headers, error.read(MAX_ANSWER_BYTES))
    except TimeoutError:
        return Response(None, error=f"timed out after {timeout:g}s")
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            return Response(None, error=f"timed out after {timeout:g}s")
        return Response(None, error=f"could not connect: {reason}")
    except (OSError, ValueError) as error:  # reset mid-answer, a malformed answer...
        return Response(None, error=f"{type(error).__name__}: {error}")


def _response(status: int, headers: Message | None, raw: bytes) -> Response:
    text = raw.decode("utf-8", errors="replace")
    try:
        parsed = jsonlib.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    names = {name.lower(): value for name, value in (headers or Message()).items()}
    return Response(status, names, parsed, text[:1000])


def classify(response: Response, now: float | None = None) -> Verdict:
    """What to do about an answer: see Outcome."""
    if response.status is None:
        return Verdict(Outcome.RETRY, response.error or "no answer")
    status = response.status
    reason = f"HTTP {status}" + (f": {message}" if (message := _message(response)) else "")
    if 200 <= status < 300:
        return Verdict(Outcome.OK, reason)
    if status in (403, 429):
        wait = _rate_limit_wait(response, time.time() if now is None else now)
        if wait is not None:
            return Verdict(Outcome.RATE_LIMITED, f"rate limited ({reason})", wait)
    if status >= 500 or status == 408:
        return Verdict(Outcome.RETRY, reason)
    if 300 <= status < 400:
        where = response.headers.get("location", "?")
        return Verdict(Outcome.GIVE_UP, f"{reason}, redirected to {where} (not followed)")
    return Verdict(Outcome.GIVE_UP, reason)


def _message(response: Response) -> str:
    """GitHub's one-line message of an error answer, or the start of its text."""
    if isinstance(response.json, dict) and isinstance(response.json.get("message"), str):
        text = response.json["message"]
    elif response.status is not None and 200 <= response.status < 300:
        return ""
    else:
        text = response.text
    return " ".join(text.split())[:200]


def _rate_limit_wait(response: Response, now: float) -> float | None:
    """Seconds GitHub asks to wait, or None if this 403/429 is not about rate limits."""
    headers = response.headers
    if retry_after := headers.get("retry-after", "").strip():
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            return DEFAULT_RATE_LIMIT_WAIT  # an HTTP date: rarer than a minute is long
    if headers.get("x-ratelimit-remaining", "").strip() == "0":
        try:
            return max(float(headers.get("x-ratelimit-reset", "")) - now, 0.0) + 1
        except ValueError:
            return DEFAULT_RATE_LIMIT_WAIT
    if response.status == 429 or "rate limit" in _message(response).lower():
        return DEFAULT_RATE_LIMIT_WAIT
    return None


def list_hook_deliveries(
    repository: str, hook_id: int | str, token: str, timeout: float | None = None
) -> Iterator[dict[str, Any]]:
    """A repository webhook's recent deliveries, newest first, page after page (GitHub's
    Link header cursor) for as long as the caller reads; GitHubError if a page fails."""
    url = f"/repos/{repository}/hooks/{quote(str(hook_id), safe='')}/deliveries?per_page=100"
    while url:
        response = _succeeded("GET", url, token, timeout)
        yield from response.json or []
        url = _next_page(response.headers.get("link", ""))


def _next_page(link: str) -> str:
    """The rel="next" URL of a Link header, moved onto GITHUB_API_URL's scheme and host:
    the token goes nowhere else, whatever the header names."""
    base = urlsplit(api_url("/"))
    for part in link.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", ""):
            found = urlsplit(target.strip().strip("<>"))
            return found._replace(scheme=base.scheme, netloc=base.netloc).geturl()
    return ""


def redeliver(
    repository: str,
    hook_id: int | str,
    delivery_id: int | str,
    token: str,
    timeout: float | None = None,
) -> Response:
    """Ask GitHub to send a delivery again (202 Accepted); GitHubError if it refuses."""
    hook, delivery = quote(str(hook_id), safe=""), quote(str(delivery_id), safe="")
    path = f"/repos/{repository}/hooks/{hook}/deliveries/{delivery}/attempts"
    return _succeeded("POST", path, token, timeout)


def _succeeded(method: str, path: str, token: str, timeout: float | None) -> Response:
    """A request tried again, as outgoing requests are, while GitHub answers 5xx or not
    at all within OUTGOING_TIMEOUT_SECONDS (OUTGOING_ATTEMPTS, waits from
    OUTGOING_RETRY_SECONDS doubling); GitHubError once it gives up, or at once on any
    other failure."""
    timeout = timeout or settings.OUTGOING_TIMEOUT_SECONDS
    attempts = 0
    while True:
        response = request(method, path, token, timeout=timeout)
        verdict = classify(response)
        if verdict.outcome == Outcome.OK:
            return response
        attempts += 1
        if verdict.outcome != Outcome.RETRY or attempts >= settings.OUTGOING_ATTEMPTS:
            raise GitHubError(verdict, response)
        time.sleep(backoff(attempts - 1))


def backoff(retries_before: int) -> float:
    """Seconds to wait before the next try, doubling from OUTGOING_RETRY_SECONDS."""
    return settings.OUTGOING_RETRY_SECONDS * 2**retries_before
