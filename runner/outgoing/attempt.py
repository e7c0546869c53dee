"""One attempt at sending an Outgoing row, and what comes after it.

Answers are classified by runner.outgoing.github_api: 5xx and network errors are tried again after
OUTGOING_RETRY_SECONDS, doubling, up to OUTGOING_ATTEMPTS times; a rate limit is waited
out (at most MOST_RATE_LIMITED times); any other 4xx gives up at once. Every attempt is
kept on the row with its outcome, and counted in its fields (failures, rate_limited,
last_attempt_at): those, never the text of an error, decide what comes next. Tokens and
signing secrets are read from the environment when sending, and never stored or logged.

Commit statuses of one pipeline and commit go out in the order they were made: one waits
while an earlier one is still being tried (unless that one is stuck, silent for longer than
any wait between attempts). A status whose news is stale is not sent: a
`pending` once its run has ended, any status once a newer run of the same pipeline and
commit reports its own.

The task that makes attempts, send_outgoing, is in runner.outgoing.
"""

import json
import logging
import os
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models.functions import Coalesce
from django.utils import timezone

from runner.config.github import sign
from runner.models import Outgoing, Run, clipped
from runner.outgoing import github_api
from runner.outgoing.bodies import reports_status
from runner.outgoing.github_api import Outcome

logger = logging.getLogger(__name__)

# Rate-limit waits do not use up OUTGOING_ATTEMPTS, but a request is not waited for forever.
MOST_RATE_LIMITED = 10
# A status waiting for an earlier one looks again after RETRY, 2 RETRY, ... up to this.
MOST_ORDER_WAIT_SECONDS = 60


class Unsendable(Exception):
    """Cannot be sent as things are (a token not set): given up without an attempt."""


def attempt(outgoing: Outgoing, waited: int = 0) -> tuple[float, int] | None:
    """Send `outgoing` once if it may go now, and record how that went; (seconds, waited)
    until it is tried again, or None when it was sent or given up."""
    run = outgoing.run
    if outgoing.kind == Outgoing.Kind.COMMIT_STATUS:
        if stale := _stale_status(outgoing, run):
            _finish(outgoing, Outgoing.State.GAVE_UP, stale)
            return None
        if _behind_earlier_status(outgoing, run):
            delay = github_api.backoff(waited)
            return min(delay, MOST_ORDER_WAIT_SECONDS), waited + 1
    try:
        url, headers, body, secret = _prepared(outgoing, run)
    except Unsendable as problem:
        _finish(outgoing, Outgoing.State.GAVE_UP, str(problem))
        logger.warning("outgoing=%s run=%s not sent: %s", outgoing.pk, run.pk, problem)
        return None
    response = github_api.send("POST", url, headers, body, settings.OUTGOING_TIMEOUT_SECONDS)
    verdict = github_api.classify(response)
    reason = _hidden(verdict.reason, secret)
    return _record(outgoing, response.status, verdict.outcome, reason, verdict.wait)


def _stale_status(outgoing: Outgoing, run: Run) -> str:
    """Why this commit status would be old news, or ""."""
    if outgoing.body.get("state") == "pending" and run.status in Run.ENDED:
        return "not sent: the run ended first; its final status is sent instead"
    newer = Run.objects.filter(
        repository=run.repository, sha=run.sha, pipeline=run.pipeline, pk__gt=run.pk
    ).only("pk", "definition")
    for other in newer.order_by("-pk"):
        if reports_status(other):
            return f"not sent: run {other.pk} of the same pipeline and commit reports instead"
    return ""


def _behind_earlier_status(outgoing: Outgoing, run: Run) -> bool:
    """Whether an earlier status of the same pipeline and commit is still being tried. One
    silent for longer than any wait between its attempts is stuck (its worker died while
    sending) and waited for no more."""
    earlier = Outgoing.objects.filter(
        kind=Outgoing.Kind.COMMIT_STATUS,
        state=Outgoing.State.PENDING,
        pk__lt=outgoing.pk,
        run__repository=run.repository,
        run__sha=run.sha,
        run__pipeline=run.pipeline,
    )
    silent_since = timezone.now() - timedelta(
        seconds=settings.OUTGOING_MAX_WAIT_SECONDS + 2 * settings.OUTGOING_TIMEOUT_SECONDS
    )
    heard = Coalesce("last_attempt_at", "created_at")
    return earlier.alias(heard=heard).filter(heard__gte=silent_since).exists()


def _prepared(outgoing: Outgoing, run: Run) -> tuple[str, dict[str, str], bytes, str]:
    """URL, headers, body and the secret they hold (to keep out of what is recorded)."""
    body = json.dumps(outgoing.body, separators=(",", ":")).encode()
    if outgoing.kind == Outgoing.Kind.COMMIT_STATUS:
        name = run.definition.token_env
        token = os.environ.get(name, "") if name else ""
        if not token:
            raise Unsendable(
                f"not sent: token_env {name} is not set in hookrunner's environment"
                if name
                else "not sent: report_status needs token_env, the variable holding a token"
            )
        headers = {**github_api.api_headers(token), "Content-Type": "application/json"}
        return outgoing.url, headers, body, token
    headers = {
        "Content-Type": "application/json",
        "User-Agent": github_api.USER_AGENT,
        "X-Hookrunner-Event": "run.finished",
        "X-Hookrunner-Delivery": str(outgoing.body.get("delivery", "")),
    }
    secret_env = run.definition.notify_secret_env(outgoing.url)
    secret = ""
    if secret_env:
        secret = os.environ.get(secret_env, "")
        if not secret:
            raise Unsendable(
                f"not sent: secret_env {secret_env} is not set, so it cannot be signed"
            )
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return outgoing.url, headers, body, secret


def _record(
    outgoing: Outgoing, status: int | None, outcome: Outcome, reason: str, wait: float | None
) -> tuple[float, int] | None:
    """Keep this attempt, and count it; what comes next (see attempt)."""
    now = timezone.now()
    entry = {"at": now.isoformat(), "status": status, "outcome": outcome.value, "error": ""}
    outgoing.attempts = [*outgoing.attempts, entry]
    outgoing.last_attempt_at = now
    again: tuple[float, int] | None = None
    if outcome == Outcome.OK:
        outgoing.state, outgoing.error = Outgoing.State.SENT, ""
    elif outcome == Outcome.GIVE_UP:
        outgoing.failures += 1
        outgoing.state, outgoing.error = Outgoing.State.GAVE_UP, reason
        entry["error"] = reason
    elif outcome == Outcome.RATE_LIMITED:
        outgoing.rate_limited += 1
        delay = min(wait or 0.0, settings.OUTGOING_MAX_WAIT_SECONDS)
        entry["error"] = f"{reason}; next attempt in {delay:g}s"
        if outgoing.rate_limited >= MOST_RATE_LIMITED:
            outgoing.state = Outgoing.State.GAVE_UP
            outgoing.error = (
                f"gave up after being rate limited {outgoing.rate_limited} times: {reason}"
            )
        else:
            again = delay, 0
    else:
        outgoing.failures += 1
        entry["error"] = reason
        if outgoing.failures >= settings.OUTGOING_ATTEMPTS:
            outgoing.state = Outgoing.State.GAVE_UP
            outgoing.error = f"gave up after {outgoing.failures} failed attempts: {reason}"
        else:
            again = github_api.backoff(outgoing.failures - 1), 0
    outgoing.error = clipped(Outgoing, error=outgoing.error)["error"]
    counted = ["attempts", "failures", "rate_limited", "last_attempt_at"]
    outgoing.save(update_fields=[*counted, "state", "error"])
    _log(outgoing, status, entry["error"], again)
    return again


def _finish(outgoing: Outgoing, state: str, error: str) -> None:
    outgoing.state, outgoing.error = state, clipped(Outgoing, error=error)["error"]
    outgoing.save(update_fields=["state", "error"])


def _hidden(text: str, secret: str) -> str:
    """`text` (a server's answer may quote the request) without the secret in it."""
    return text.replace(secret, "[hidden]") if secret else text


def _log(
    outgoing: Outgoing, status: int | None, error: str, again: tuple[float, int] | None
) -> None:
    if outgoing.kind == Outgoing.Kind.COMMIT_STATUS:
        target = f"status {outgoing.body.get('state')} {outgoing.body.get('context')}"
    else:
        # Only the host: a notification URL may itself be a credential (chat webhooks).
        target = f"notification to {urlsplit(outgoing.url).hostname}"
    answer = f"HTTP {status}" if status else "no answer"
    then = f"again in {again[0]:g}s" if again else outgoing.get_state_display()
    level = logging.WARNING if outgoing.state == Outgoing.State.GAVE_UP else logging.INFO
    logger.log(
        level, "outgoing=%s run=%s %s: %s%s, %s",
        outgoing.pk, outgoing.run_id, target, answer, f" ({error})" if error else "", then,
    )  # fmt: skip
