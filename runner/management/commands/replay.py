"""Process a stored delivery again against the current pipelines.yaml.

GitHub's redeliver is answered as a duplicate once a delivery was processed; this is the
deliberate way to start its pipelines after fixing the configuration.
"""

from django.core.management.base import BaseCommand, CommandError

from runner.db import write_transaction
from runner.github import event_from_payload
from runner.models import Delivery
from runner.pipelines import match
from runner.pipelines_file import PipelinesError
from runner.pipelines_store import current_pipelines
from runner.runs import start_runs


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
            config = current_pipelines()
        except PipelinesError as error:
            raise CommandError(str(error)) from None
        event = event_from_payload(delivery.event, delivery.payload, delivery.delivery_id)
        verdicts = match(config, event)
        for verdict in verdicts:
            self.stdout.write(f"  {verdict}")
        starting = [verdict.pipeline for verdict in verdicts if verdict.starts]
        if dry_run or not starting:
            self.stdout.write("nothing queued" + (" (dry run)" if dry_run else ""))
            return
        with write_transaction():
            run_ids = start_runs(delivery.pk, event, starting)
            names = ", ".join(pipeline.name for pipeline in starting)
            detail = f"replayed: started {len(run_ids)} run(s): {names}"
            Delivery.objects.set_outcome(delivery.pk, Delivery.Status.ACCEPTED, detail)
        self.stdout.write(f"queued runs {', '.join(str(pk) for pk in run_ids)}")
