"""Delete what has been kept long enough: DELIVERY_RETENTION and RUN_RETENTION, in days."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runner.ops.purge import Cutoffs, purge


class Command(BaseCommand):
    help = (
        "Delete deliveries, refused requests, finished tasks and silent workers older than "
        "DELIVERY_RETENTION days, finished runs with their output older than RUN_RETENTION "
        "days (unless a kept run re-runs them), and stale workspaces; a short transaction "
        "at a time. Queued and running runs, and redactions, are never deleted."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="only count what would go; delete nothing"
        )

    def handle(self, *args, dry_run: bool, **options) -> None:
        for name in ("DELIVERY_RETENTION", "RUN_RETENTION"):
            if getattr(settings, name) < 1:
                raise CommandError(f"{name} is {getattr(settings, name)}; it needs 1 day or more")
        cutoffs = Cutoffs.from_settings()
        self.stdout.write(
            f"deliveries from before {cutoffs.deliveries:%Y-%m-%d %H:%M} UTC "
            f"(DELIVERY_RETENTION={settings.DELIVERY_RETENTION} days), runs from before "
            f"{cutoffs.runs:%Y-%m-%d %H:%M} UTC (RUN_RETENTION={settings.RUN_RETENTION} days)"
        )
        for line in purge(cutoffs, dry_run=dry_run).lines():
            self.stdout.write(line)
