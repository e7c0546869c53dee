"""Run history in Django admin: deliveries and refused requests, read-only."""

from django.contrib import admin

from runner.models import Delivery, DroppedRejections, RejectedRequest, Run

admin.site.site_header = admin.site.site_title = "hookrunner"
admin.site.index_title = "Deliveries and runs"


class ReadOnlyAdmin(admin.ModelAdmin):
    """The log records what happened; nobody edits history."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class RunInline(admin.TabularInline):
    model = Run
    fields = ("pipeline", "status", "queue", "sha", "created_at")
    readonly_fields = fields
    show_change_link = True
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "repository", "pipeline", "event", "ref", "short_sha", "status")
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
