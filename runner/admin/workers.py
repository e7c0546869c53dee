"""Workers in admin: which processes take runs, from which queues, and when last seen."""

from django.contrib import admin

from runner.admin.common import ReadOnlyAdmin
from runner.models import WorkerSeen


@admin.register(WorkerSeen)
class WorkerSeenAdmin(ReadOnlyAdmin):
    list_display = ("name", "queues", "started_at", "seen_at")
    ordering = ("-seen_at",)
