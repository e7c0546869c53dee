"""What is live in each environment, what is on its way there, and its lock."""

from datetime import UTC

from django.core.management.base import BaseCommand

from runner.management.commands import _common
from runner.models import Run
from runner.runs import deployments
from runner.runs.deployments import EnvironmentState


class Command(BaseCommand):
    help = (
        "One line per environment (of REPO): its live deployment, the run on its way, its "
        "lock, its url."
    )
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("repository", nargs="?", default="", help="OWNER/REPO")

    def handle(self, *args, repository: str, **options) -> None:
        if repository:
            _common.check_repository(repository)
        states = deployments.environments(repository)
        if not states:
            self.stdout.write(f"no environments{f' of {repository}' if repository else ''} yet")
        for state in states:
            self.stdout.write(line(state))


def line(state: EnvironmentState) -> str:
    """ "acme/shop production: live abc1234def56 (refs/heads/main) run 12 by alice,
    succeeded 2026-12-07 10:00 UTC; on its way: run 14 waiting for approval; locked by
    bob: freeze; https://shop.example" """
    parts = [_live(state.live)]
    if state.in_progress is not None:
        parts.append(f"on its way: {_said(state.in_progress)}")
    if state.lock is not None:
        parts.append(f"locked by {state.lock.by}: {state.lock.reason}")
    if state.url:
        parts.append(state.url)
    return f"{state.repository} {state.environment}: {'; '.join(parts)}"


def _live(run: Run | None) -> str:
    if run is None:
        return "nothing deployed yet"
    ref = f" ({run.ref})" if run.ref else ""
    who = f"by {run.requested_by}" if run.requested_by else f"on {run.event}"
    rollback = f" (rollback of run {run.rollback_of_id})" if run.rollback_of_id else ""
    when = run.finished_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"live {run.sha[:12]}{ref} run {run.pk}{rollback} {who}, succeeded {when}"


def _said(run: Run) -> str:
    if run.status == Run.Status.WAITING:
        return f"run {run.pk} {run.detail}"
    return f"run {run.pk} {run.status}"
