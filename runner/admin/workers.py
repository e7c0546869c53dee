"""Workers in admin: which processes take runs, from which queues, what each runs now, and
when each was last seen."""

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from runner.admin.common import ReadOnlyAdmin
from runner.models import Run, WorkerSeen

# What `manage.py worker --queues` takes for "all of them".
EVERY_QUEUE = "*"


class WorkerChangeList(ChangeList):
    def get_results(self, request) -> None:
        super().get_results(request)
        attach_running_runs(self.result_list)


def attach_running_runs(workers: list[WorkerSeen]) -> None:
    """Give each worker the runs it is running, as `running_runs`, in one query for all
    of them."""
    running = (
        Run.objects.filter(status=Run.Status.RUNNING, worker__in=[w.name for w in workers])
        .only("pk", "repository", "pipeline", "worker")
        .order_by("pk")
    )
    by_worker: dict[str, list[Run]] = {}
    for run in running:
        by_worker.setdefault(run.worker, []).append(run)
    for worker in workers:
        worker.running_runs = by_worker.get(worker.name, [])


@admin.register(WorkerSeen)
class WorkerSeenAdmin(ReadOnlyAdmin):
    list_display = ("name", "takes", "running", "started_at", "seen_at")
    ordering = ("-seen_at",)

    def get_changelist(self, request, **kwargs):
        return WorkerChangeList

    @admin.display(description="queues")
    def takes(self, worker: WorkerSeen) -> str:
        if worker.queues == EVERY_QUEUE:
            return "every queue"
        return ", ".join(name.strip() for name in worker.queues.split(","))

    @admin.display(description="running now")
    def running(self, worker: WorkerSeen) -> SafeString | str:
        if not worker.running_runs:
            return "idle"
        links = (
            (
                reverse("admin:runner_run_change", args=[run.pk]),
                run.pk,
                run.repository,
                run.pipeline,
            )
            for run in worker.running_runs
        )
        return format_html_join(", ", '<a href="{}">#{} {} {}</a>', links)
