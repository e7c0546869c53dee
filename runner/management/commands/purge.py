"""Delete deliveries, runs, output and refusals older than HISTORY_DAYS (or --days)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from runner.purge import purge, purgeable


class Command(BaseCommand):
    help = "Delete history older than --days (default HISTORY_DAYS); active runs are kept."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=settings.HISTORY_DAYS)
        parser.add_argument("--dry-run", action="store_true", help="only count what would go")

    def handle(self, *args, days: int, dry_run: bool, **options) -> None:
        cutoff = timezone.now() - timedelta(days=days)
        if dry_run:
            counts = {name: qs.count() for name, qs in purgeable(cutoff).items()}
            self.stdout.write(
                f"would delete, from before {cutoff:%Y-%m-%d %H:%M}: "
                f"{counts['deliveries']} deliveries (with their runs and output), "
                f"{counts['rejections']} rejected requests, {counts['tasks']} finished tasks"
            )
            return
        purged = purge(cutoff)
        self.stdout.write(
            f"deleted, from before {cutoff:%Y-%m-%d %H:%M}: {purged.deliveries} deliveries "
            f"(with their runs and output), {purged.rejections} rejected requests, "
            f"{purged.tasks} finished tasks"
        )
