"""Run history in Django admin: deliveries and refused requests, read-only."""

from django.contrib import admin

from runner.models import Delivery, DroppedRejections, RejectedRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    """The log records what happened; nobody edits history."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
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
