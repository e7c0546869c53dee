"""Deploy an earlier commit to an environment again, as admin's Roll back does."""

from django.core.management.base import BaseCommand

from runner.management.commands import _common
from runner.runs import deployments


class Command(BaseCommand):
    help = (
        "Deploy to ENVIRONMENT of REPO the commit that succeeded there before the live one, "
        "or the one --to names, with the pipeline that deployed it."
    )
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("repository", help="OWNER/REPO")
        parser.add_argument("environment", help="the environment's name (production, ...)")
        parser.add_argument("--to", default="", metavar="SHA", help="a sha that succeeded there")
        parser.add_argument("--reason", default="", help="why, shown on the run")
        _common.add_pipelines_argument(parser)
        _common.add_by_argument(parser)

    def handle(self, *args, repository: str, environment: str, **options) -> None:
        _common.check_repository(repository)
        config = _common.config(options["pipelines"], self.stderr)
        with _common.refusals():
            run = deployments.rollback(
                config, repository, environment, options["to"], _common.by(options),
                options["reason"],
            )  # fmt: skip
        back_from = f" (rollback of run {run.rollback_of_id})" if run.rollback_of_id else ""
        self.stdout.write(f"{environment} of {repository} back to {run.sha}{back_from}")
        self.stdout.write(_common.said(run))
