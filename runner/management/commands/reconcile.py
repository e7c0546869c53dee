"""Ask GitHub to send again the recent deliveries hookrunner failed or never got.

Safe from a timer: hookrunner answers a delivery it already processed as a duplicate.
"""

import os
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from runner.config.github import REPOSITORY_NAME
from runner.config.pipelines_file import PipelinesError, load_pipelines
from runner.config.text import counted
from runner.outgoing import github_api
from runner.outgoing.reconcile import (
    MAX_REDELIVERIES,
    REDELIVERY_WINDOW,
    Action,
    Attempt,
    Decision,
    decide,
    latest_hook_id,
    stored_statuses,
)

# Items read from GitHub's list at most (100 a page), however many it has.
MAX_LISTED = 10_000
# What a refusal of these means, for the person reading it.
HINTS = {
    401: "the token is not valid (expired or revoked?)",
    403: (
        "the token may not do this: it needs the repository permission Webhooks "
        "(read to list, read and write to redeliver), and its owner admin access"
    ),
    404: (
        "GitHub knows no such hook on this repository, or the token cannot see it "
        "(it needs Webhooks: read; an organization's webhook is not the repository's)"
    ),
}


class Command(BaseCommand):
    help = (
        "List a repository webhook's deliveries of the last 3 days through GitHub's API and "
        "ask GitHub to redeliver those hookrunner failed or never got."
    )
    # Talks to GitHub, not to webhooks: the webhook secret's check has nothing to say.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("repository", help="OWNER/REPO")
        parser.add_argument(
            "--hook-id", help="the webhook's id (default: the newest stored delivery's)"
        )
        parser.add_argument(
            "--token-env",
            help="variable holding the GitHub token (default: the repository's token_env)",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=MAX_REDELIVERIES,
            help=f"redeliveries asked for at most (default {MAX_REDELIVERIES})",
        )
        parser.add_argument("--dry-run", action="store_true", help="only list, redeliver none")

    def handle(self, *args, repository: str, **options) -> None:
        if not REPOSITORY_NAME.fullmatch(repository):
            raise CommandError(f"{repository!r} is not OWNER/REPO")
        if options["limit"] < 0:
            raise CommandError("--limit cannot be negative")
        hook_id = self._hook_id(repository, options["hook_id"])
        token = self._token = self._find_token(repository, options["token_env"])
        now = timezone.now()
        try:
            attempts = self._recent_attempts(repository, hook_id, token, now)
        except github_api.GitHubError as error:
            raise CommandError(
                self._refusal(f"listing the deliveries of hook {hook_id} failed", error)
            ) from None
        stored = stored_statuses(attempt.guid for attempt in attempts)
        decisions = decide(attempts, stored, now, limit=options["limit"])
        self._act(repository, hook_id, token, decisions, options["dry_run"])

    def _hook_id(self, repository: str, given: str | None) -> str:
        if given is not None:
            if not given.isdigit():
                raise CommandError(f"--hook-id {given!r} is not a number")
            return given
        found = latest_hook_id(repository)
        if not found:
            raise CommandError(
                f"no delivery from {repository} with a hook id is stored: pass --hook-id "
                "(the number at the end of the webhook's settings page URL)"
            )
        return found

    def _find_token(self, repository: str, given: str | None) -> str:
        name = given or self._configured_token_env(repository)
        if not name:
            raise CommandError(
                f"no token for {repository}: set token_env in its entry of pipelines.yaml, "
                "or pass --token-env NAME"
            )
        token = os.environ.get(name, "")
        if not token:
            raise CommandError(f"{name}, which should hold the GitHub token, is not set")
        return token

    def _configured_token_env(self, repository: str) -> str:
        path = Path(settings.PIPELINES_FILE)
        try:
            config = load_pipelines(path, os.environ)
        except PipelinesError as error:
            raise CommandError(f"{path} is not valid (or pass --token-env):\n{error}") from None
        covered = config.repository(repository)
        return covered.token_env if covered is not None else ""

    def _recent_attempts(
        self, repository: str, hook_id: str, token: str, now: datetime
    ) -> list[Attempt]:
        """GitHub's attempts of the redelivery window, newest first; no page is fetched
        past the first attempt older than the window."""
        attempts = []
        for item in github_api.list_hook_deliveries(repository, hook_id, token):
            try:
                attempt = Attempt.from_api(item)
            except (KeyError, TypeError, ValueError) as error:
                raise CommandError(
                    f"GitHub listed a delivery hookrunner cannot read: {error!r}"
                ) from None
            if attempt.delivered_at < now - REDELIVERY_WINDOW or len(attempts) >= MAX_LISTED:
                break
            attempts.append(attempt)
        return attempts

    def _act(
        self,
        repository: str,
        hook_id: str,
        token: str,
        decisions: list[Decision],
        dry_run: bool,
    ) -> None:
        counts = {"redelivered": 0, "skipped": 0, "later": 0, "refused": 0}
        for decision in decisions:
            if not decision.redeliver:
                counts["later" if decision.action == Action.LATER else "skipped"] += 1
                self._line(decision, decision.text)
                continue
            if dry_run:
                counts["redelivered"] += 1
                self._line(decision, "would redeliver (dry run)")
                continue
            try:
                github_api.redeliver(repository, hook_id, decision.latest.id, token)
            except github_api.GitHubError as error:
                counts["refused"] += 1
                self._line(decision, f"redelivery refused: {self._clean(error.verdict.reason)}")
                if error.response.status in HINTS or (
                    error.verdict.outcome == github_api.Outcome.RATE_LIMITED
                ):
                    self._summary(counts, dry_run)
                    raise CommandError(self._refusal("redelivering stopped", error)) from None
                continue
            counts["redelivered"] += 1
            self._line(decision, "redelivered")
        self._summary(counts, dry_run)
        if counts["refused"]:
            raise CommandError(f"GitHub refused {counts['refused']} redelivery request(s)")

    def _line(self, decision: Decision, outcome: str) -> None:
        latest = decision.latest
        tries = f" ({decision.attempts} attempts)" if decision.attempts > 1 else ""
        self.stdout.write(
            f"{latest.guid}  {decision.event}  GitHub: {latest.github_status}{tries}  "
            f"hookrunner: {decision.hookrunner_status or 'none'}  -> {outcome}"
        )

    def _summary(self, counts: dict[str, int], dry_run: bool) -> None:
        total = sum(counts.values())
        done = "would redeliver" if dry_run else "redelivered"
        parts = [f"{counts['redelivered']} {done}", f"{counts['skipped']} skipped"]
        if counts["later"]:
            parts.append(f"{counts['later']} left for the next run")
        if counts["refused"]:
            parts.append(f"{counts['refused']} refused")
        window = REDELIVERY_WINDOW.days
        listed = counted(total, "delivery", "deliveries")
        self.stdout.write(f"{listed} in the last {window} days: {', '.join(parts)}")

    def _refusal(self, what: str, error: github_api.GitHubError) -> str:
        reason = self._clean(error.verdict.reason)
        if error.response.status is None:
            return f"{what}: GitHub's API ({settings.GITHUB_API_URL}) did not answer: {reason}"
        message = f"{what}: GitHub answered {reason}"
        if hint := HINTS.get(error.response.status or 0):
            message += f" ({hint})"
        return message

    def _clean(self, text: str) -> str:
        """`text` without the token, should an answer ever quote it."""
        token = getattr(self, "_token", "")
        return text.replace(token, "***") if token else text
