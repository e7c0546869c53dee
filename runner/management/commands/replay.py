"""Process a stored delivery again against the current pipelines.yaml (see runner.runs.replay)."""

from django.core.management.base import BaseCommand, CommandError

from runner.config.pipelines_file import PipelinesError
from runner.models import Delivery
from runner.runs.replay import replay


class Command(BaseCommand):
    help = "Match a stored delivery (by X-GitHub-Delivery id) again and queue what it starts."

    def add_arguments(self, parser) -> None:
        parser.add_argument("delivery_id")
        parser.add_argument("--dry-run", action="store_true", help="only show what would start")

    def handle(self, *args, delivery_id: str, dry_run: bool, **options) -> None:
        delivery = Delivery.objects.originals().filter(delivery_id=delivery_id).first()
        if delivery is None:
            raise CommandError(f"no stored delivery {delivery_id}")
        try:
            result = replay(delivery, dry_run=dry_run)
        except PipelinesError as error:
            raise CommandError(str(error)) from None
        for verdict in result.verdicts:
            self.stdout.write(f"  {verdict}")
        if not result.run_ids:
            self.stdout.write("nothing queued" + (" (dry run)" if dry_run else ""))
            return
        self.stdout.write(f"queued runs {', '.join(str(pk) for pk in result.run_ids)}")
