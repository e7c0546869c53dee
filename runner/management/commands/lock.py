"""Freeze an environment, as admin's Lock does: its runs not yet started wait."""

from django.core.management.base import BaseCommand, CommandError

from runner.config.pipelines import AmbiguousPipelines, Config
from runner.management.commands import _deploying
from runner.runs import lifecycle


class Command(BaseCommand):
    help = "Lock ENVIRONMENT of REPO: its runs wait until it is unlocked (manage.py unlock)."
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("repository", help="OWNER/REPO")
        parser.add_argument("environment", help="the environment's name (production, ...)")
        parser.add_argument("--reason", required=True, help="why, shown on the waiting runs")
        _deploying.add_pipelines_argument(parser)
        _deploying.add_by_argument(parser)

    def handle(self, *args, repository: str, environment: str, **options) -> None:
        _deploying.check_repository(repository)
        config = _deploying.config(options["pipelines"], self.stderr)
        _check_environment(config, repository, environment)
        wanted = _deploying.by(options), options["reason"]
        held = lifecycle.lock(repository, environment, *wanted)
        already = "" if (held.by, held.reason) == wanted else "already "
        self.stdout.write(f"{repository} {environment} {already}locked by {held.by}: {held.reason}")


def _check_environment(config: Config, repository: str, environment: str) -> None:
    """A name no pipeline of the repository deploys to is a typo: locking it would freeze
    nothing."""
    covered = config.repository(repository)
    if covered is None:
        raise CommandError(f"no entry in {config.source} covers {repository}")
    try:
        pipelines = covered.pipelines
    except AmbiguousPipelines as error:
        raise CommandError(str(error)) from None
    names = sorted({p.environment.name for p in pipelines if p.environment is not None})
    if environment not in names:
        raise CommandError(
            f"no pipeline of {repository} deploys to {environment} "
            f"(its environments: {', '.join(names) or 'none'})"
        )
