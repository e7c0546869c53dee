"""Run history in Django admin, read-only: deliveries, runs with their output, refusals."""

from django.contrib import admin
from django.utils.html import format_html

from runner.models import Delivery, DroppedRejections, RejectedRequest, Run, Step
from runner.runs import rerun

admin.site.site_header = admin.site.site_title = "hookrunner"
admin.site.index_title = "Deliveries and runs"


class ReadOnly:
    """The log records what happened; nobody edits history."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnly, admin.ModelAdmin):
    pass


class RunInline(ReadOnly, admin.TabularInline):
    model = Run
    fields = ("pipeline", "status", "queue", "sha", "created_at")
    readonly_fields = fields
    show_change_link = True
    extra = 0
    can_delete = False


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


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    inlines = (RunInline,)
    list_display = ("received_at", "event", "action", "repository", "ref", "status", "detail")
    list_filter = ("status", "event", "repository")
    search_fields = ("delivery_id", "repository", "ref", "sender")
    date_hierarchy = "received_at"
    readonly_fields = (
        "delivery_id",
        "event",
        "action",
        "hook_id",
        "repository",
        "sender",
        "ref",
        "received_at",
        "status",
        "detail",
        "attempts",
        "original",
        "payload",
    )


@admin.register(RejectedRequest)
class RejectedRequestAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "http_status", "reason", "remote_addr", "event", "delivery_id")
    list_filter = ("http_status", "event")
    search_fields = ("delivery_id", "reason", "remote_addr")
    date_hierarchy = "received_at"
    readonly_fields = (
        "received_at",
        "http_status",
        "reason",
        "remote_addr",
        "delivery_id",
        "event",
        "headers",
        "body_sha256",
        "body_bytes",
    )


@admin.register(DroppedRejections)
class DroppedRejectionsAdmin(ReadOnlyAdmin):
    list_display = ("minute", "count")
    date_hierarchy = "minute"
