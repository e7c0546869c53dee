"""Approve or reject a run waiting for approval, as admin's Approve and Reject do. A
local, trusted command: it does not ask whether the person is among the approvers."""

from django.core.management.base import BaseCommand

from runner.management.commands import _common
from runner.runs import deployments


class Command(BaseCommand):
    help = "Approve (or with --reject, reject) a run waiting for approval."
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("run_id", type=int, metavar="RUN_ID")
        parser.add_argument("--reject", action="store_true", help="reject it: it is cancelled")
        parser.add_argument("--reason", default="", help="why, recorded with the decision")
        _common.add_by_argument(parser)

    def handle(self, *args, run_id: int, **options) -> None:
        run = _common.run_of(run_id)
        who = _common.by(options)
        with _common.refusals():
            deployments.decide(run, not options["reject"], who, options["reason"])
        decided = "rejected" if options["reject"] else "approved"
        self.stdout.write(f"run {run_id} {decided} by {who}")
        self.stdout.write(_common.said(run))
