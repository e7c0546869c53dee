"""Start a pipeline with `on: manual` at a branch, tag or commit, as admin's "Run
pipeline" does: the name is resolved to a sha through the repository's mirror first."""

from django.core.management.base import BaseCommand, CommandError

from runner.execution import refs
from runner.execution.refs import ABBREVIATED_SHA
from runner.management.commands import _common
from runner.runs import deployments


class Command(BaseCommand):
    help = (
        "Start PIPELINE (one with on: manual) of REPO at a branch or tag (--ref) or a commit "
        "(--sha), with its inputs (--input NAME=VALUE)."
    )
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("repository", help="OWNER/REPO")
        parser.add_argument("pipeline", help="the pipeline's name in pipelines.yaml")
        at = parser.add_mutually_exclusive_group(required=True)
        at.add_argument("--ref", help="a branch or tag (main, v1.2, refs/tags/v1.2)")
        at.add_argument("--sha", help="a commit (its sha, or 7 hex digits of it or more)")
        parser.add_argument(
            "--input", action="append", default=[], metavar="NAME=VALUE",
            help="a value for one of the pipeline's inputs (again for each input)",
        )  # fmt: skip
        _common.add_pipelines_argument(parser)
        _common.add_by_argument(parser)

    def handle(self, *args, repository: str, pipeline: str, **options) -> None:
        _common.check_repository(repository)
        if options["sha"] is not None and not ABBREVIATED_SHA.fullmatch(options["sha"].lower()):
            raise CommandError(f"--sha {options['sha']!r} is not a commit sha (hex digits)")
        given = _inputs(options["input"])
        config = _common.config(options["pipelines"], self.stderr)
        with _common.refusals():
            found = deployments.manual_pipeline(config, repository, pipeline)
            # Bad inputs are refused before anything is fetched.
            deployments.input_values(found, given)
            url = deployments.clone_url_of(repository, found)
            commit = refs.resolve(url, options["ref"] or options["sha"])
            run = deployments.start(found, repository, commit, given, _common.by(options))
        at = f"{commit.ref} at {commit.sha}" if commit.ref else commit.sha
        self.stdout.write(f"{pipeline} of {repository}: {at}")
        self.stdout.write(_common.said(run))


def _inputs(given: list[str]) -> dict[str, str]:
    """--input NAME=VALUE options by name; a name given twice is refused."""
    values: dict[str, str] = {}
    for option in given:
        name, equals, value = option.partition("=")
        if not equals or not name:
            raise CommandError(f"--input {option!r} is not NAME=VALUE")
        if name in values:
            raise CommandError(f"--input {name} is given twice")
        values[name] = value
    return values
