"""Deliveries in admin: what GitHub sent, and the runs each one started."""

from django.contrib import admin

from runner.admin.common import ReadOnly, ReadOnlyAdmin
from runner.models import Delivery, Run


class RunInline(ReadOnly, admin.TabularInline):
    model = Run
    fields = ("pipeline", "status", "queue", "sha", "created_at")
    readonly_fields = fields
    show_change_link = True
    extra = 0
    can_delete = False


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
