"""Freeze an environment, as admin's Lock does: its runs not yet started wait."""

from django.core.management.base import BaseCommand

from runner.management.commands import _common
from runner.runs import lifecycle
from runner.runs.deployments import check_environment


class Command(BaseCommand):
    help = "Lock ENVIRONMENT of REPO: its runs wait until it is unlocked (manage.py unlock)."
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("repository", help="OWNER/REPO")
        parser.add_argument("environment", help="the environment's name (production, ...)")
        parser.add_argument("--reason", required=True, help="why, shown on the waiting runs")
        _common.add_pipelines_argument(parser)
        _common.add_by_argument(parser)

    def handle(self, *args, repository: str, environment: str, **options) -> None:
        _common.check_repository(repository)
        config = _common.config(options["pipelines"], self.stderr)
        with _common.refusals():
            check_environment(config, repository, environment)
        wanted = _common.by(options), options["reason"]
        held = lifecycle.lock(repository, environment, *wanted)
        already = "" if (held.by, held.reason) == wanted else "already "
        self.stdout.write(f"{repository} {environment} {already}locked by {held.by}: {held.reason}")
