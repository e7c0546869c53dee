"""End an environment's freeze, as admin's Unlock does: the runs it held move on."""

from django.core.management.base import BaseCommand, CommandError

from runner.management.commands import _common
from runner.runs import lifecycle


class Command(BaseCommand):
    help = "Unlock ENVIRONMENT of REPO; the runs waiting for it move on."
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("repository", help="OWNER/REPO")
        parser.add_argument("environment", help="the environment's name (production, ...)")

    def handle(self, *args, repository: str, environment: str, **options) -> None:
        _common.check_repository(repository)
        released = lifecycle.unlock(repository, environment)
        if released is None:
            raise CommandError(f"{repository} {environment} is not locked")
        self.stdout.write(f"{repository} {environment} unlocked")
        for run_id in released:
            self.stdout.write(_common.said(_common.run_of(run_id)))
