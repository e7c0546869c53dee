"""Which pipelines a delivery would start, and for the others the trigger that said no."""

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runner.config.github import BadDelivery
from runner.config.matching import is_from_fork, match
from runner.config.pipelines_file import PipelinesError, load_pipelines
from runner.config.repositories import AmbiguousPipelines
from runner.receiver.parsing import parse_event


class Command(BaseCommand):
    help = "Show which pipelines a delivery (EVENT and its JSON payload file) would start."
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("event", help="the X-GitHub-Event value: push, pull_request, ...")
        parser.add_argument("payload_file", help="the delivery's JSON payload")
        parser.add_argument(
            "--pipelines", metavar="FILE", help="pipelines file (default: PIPELINES_FILE)"
        )

    def handle(self, *args, event: str, payload_file: str, pipelines: str | None, **options):
        path = Path(pipelines) if pipelines else Path(settings.PIPELINES_FILE)
        try:
            body = Path(payload_file).read_bytes()
        except OSError as error:
            raise CommandError(f"{payload_file}: {error.strerror}") from None
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": "match", "Content-Type": ""}
        try:
            delivery = parse_event(headers, body)
            # Matching reads no secret: one that is not set here may well be on the server.
            config = load_pipelines(path, os.environ, warn_of_unset=True)
        except (BadDelivery, PipelinesError) as error:
            raise CommandError(str(error)) from None
        for warning in config.warnings:
            self.stderr.write(f"warning: {warning}")
        repository = config.repository(delivery.repository)
        if repository is None:
            self.stdout.write(f"no entry in {path} covers {delivery.repository or 'this event'}")
            return
        try:
            verdicts = match(config, delivery)
        except AmbiguousPipelines as error:
            raise CommandError(str(error)) from None
        fork = " from a fork" if is_from_fork(delivery) else ""
        where = f"{delivery.repository} {delivery.ref}".strip()
        self.stdout.write(f"{event}{fork} to {where}, via {repository.patterns}:")
        for verdict in verdicts:
            self.stdout.write(f"  {verdict}")
