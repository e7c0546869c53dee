"""Cancel runs from the command line, as admin's cancel action does."""

from django.core.management.base import BaseCommand, CommandError

from runner.models import Run
from runner.runs.lifecycle import Cancel, cancel


class Command(BaseCommand):
    help = (
        "Cancel runs by id: a queued run at once; a running one by asking its worker, "
        "which stops the step's whole process group."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("run_ids", nargs="+", type=int, metavar="RUN_ID")

    def handle(self, *args, run_ids: list[int], **options) -> None:
        unknown = []
        for run_id in run_ids:
            run = Run.objects.filter(pk=run_id).first()
            if run is None:
                # Said once, at the end: the others are cancelled first.
                unknown.append(str(run_id))
                continue
            self.stdout.write(f"run {run_id}: {self.cancel(run)}")
        if unknown:
            raise CommandError(f"no such run: {', '.join(unknown)}")

    def cancel(self, run: Run) -> str:
        outcome = cancel(run)
        if outcome == Cancel.CANCELLED:
            return "cancelled"
        run.refresh_from_db(fields=["status", "worker"])
        if outcome == Cancel.ASKED_TO_STOP:
            return f"asked to stop; its worker ({run.worker}) stops it within a second"
        return f"already finished ({run.get_status_display()})"
