"""Process a stored delivery again against the current pipelines.yaml (see runner.runs.replay).

Its report is its stdout. Log lines go to stderr, as everywhere, and below --verbosity 2
only warnings and errors among them: INFO lines such as "pipelines loaded" would only
crowd the report in a terminal.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError

from runner.config.github import BadDelivery
from runner.config.pipelines_file import PipelinesError
from runner.config.repositories import AmbiguousPipelines
from runner.models import Delivery
from runner.runs.replay import Replay, replay


class Command(BaseCommand):
    help = "Match a stored delivery (by X-GitHub-Delivery id) again and queue what it starts."

    def add_arguments(self, parser) -> None:
        parser.add_argument("delivery_id")
        parser.add_argument("--dry-run", action="store_true", help="only show what would start")

    def handle(self, *args, delivery_id: str, dry_run: bool, verbosity: int, **options) -> None:
        delivery = Delivery.objects.originals().filter(delivery_id=delivery_id).first()
        if delivery is None:
            raise CommandError(f"no stored delivery {delivery_id}")
        with log_quiet(verbosity < 2):
            try:
                result = replay(delivery, dry_run=dry_run)
            except (PipelinesError, BadDelivery, AmbiguousPipelines) as error:
                raise CommandError(f"delivery {delivery_id} not replayed: {error}") from None
        self.report(delivery_id, result, dry_run)

    def report(self, delivery_id: str, result: Replay, dry_run: bool) -> None:
        # When nothing starts the summary gives each pipeline's reason itself.
        if result.starting:
            for verdict in result.verdicts:
                self.stdout.write(f"  {verdict}")
        dry = " (dry run: nothing queued)" if dry_run else ""
        self.stdout.write(f"delivery {delivery_id}: {result.summary()}{dry}")


@contextmanager
def log_quiet(quiet: bool) -> Iterator[None]:
    """Meanwhile, if `quiet`, hookrunner's log shows only warnings and errors."""
    logger = logging.getLogger("runner")
    level = logger.level
    if quiet:
        logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)
