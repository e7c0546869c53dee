"""Refused requests in admin: what users look at when GitHub shows a red delivery."""

from django.contrib import admin

from runner.admin.common import ReadOnlyAdmin
from runner.models import DroppedRejections, RejectedRequest


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
