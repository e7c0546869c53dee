"""Runs in admin: the list, each run's steps and output, cancel and run again."""

from django.contrib import admin
from django.utils.html import format_html

from runner.admin.common import ReadOnly, ReadOnlyAdmin
from runner.models import Run, Step
from runner.runs import rerun


class StepInline(ReadOnly, admin.StackedInline):
    model = Step
    fields = ("name", "status", "exit_code", "started_at", "finished_at", "output")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="output")
    def output(self, step: Step) -> str:
        text = "".join(step.chunks.values_list("text", flat=True))
        note = f"{step.output_bytes} bytes" + (
            f", {step.dropped_bytes} dropped" if step.dropped_bytes else ""
        )
        return format_html('<pre style="white-space: pre-wrap">{}</pre>{}', text, note)


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    inlines = (StepInline,)
    actions = ("cancel", "run_again")

    @admin.action(description="Cancel selected runs")
    def cancel(self, request, queryset) -> None:
        for run in queryset:
            self.message_user(request, f"run {run.pk}: {run.request_cancel()}")

    @admin.action(description="Run selected runs again")
    def run_again(self, request, queryset) -> None:
        for run in queryset:
            self.message_user(request, f"run {run.pk}: queued again as run {rerun(run).pk}")

    list_display = (
        "created_at",
        "repository",
        "pipeline",
        "event",
        "ref",
        "short_sha",
        "status",
        "detail",
    )
    list_filter = ("status", "repository", "pipeline", "queue")
    search_fields = ("repository", "pipeline", "sha", "ref")
    date_hierarchy = "created_at"
    readonly_fields = (
        "delivery",
        "repository",
        "pipeline",
        "event",
        "sha",
        "ref",
        "pr_number",
        "from_fork",
        "queue",
        "task_id",
        "status",
        "created_at",
        "definition",
    )

    @admin.display(description="sha")
    def short_sha(self, run: Run) -> str:
        return run.sha[:12]
