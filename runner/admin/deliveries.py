"""Deliveries in admin: what GitHub sent, the runs each one started, and replaying it."""

import json

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from runner.admin.common import ReadOnly, ReadOnlyAdmin
from runner.config.github import BadDelivery
from runner.config.pipelines import AmbiguousPipelines
from runner.config.pipelines_file import PipelinesError
from runner.config.text import counted
from runner.models import Delivery, Run
from runner.models.statuses import look_of
from runner.runs.replay import NotReplayable
from runner.runs.replay import replay as replay_delivery

# All the list needs of a delivery's runs, fetched in one query for the whole page.
RUNS_IN_LIST = Prefetch(
    "runs", queryset=Run.objects.only("pk", "delivery_id", "pipeline", "status").order_by("pk")
)


class RunInline(ReadOnly, admin.TabularInline):
    model = Run
    fields = ("pipeline", "status", "queue", "sha", "created_at")
    readonly_fields = fields
    show_change_link = True
    extra = 0
    can_delete = False


class DeliveryChangeList(ChangeList):
    # Only the list shows runs per row; the delivery page has its inline instead.
    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).prefetch_related(RUNS_IN_LIST)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    inlines = (RunInline,)
    actions = ("replay",)
    list_display = (
        "received_at",
        "event",
        "action",
        "repository",
        "ref",
        "status",
        "runs_started",
        "detail",
    )
    list_filter = ("status", "event", "repository")
    search_fields = ("delivery_id", "repository", "ref", "sender")
    date_hierarchy = "received_at"
    ordering = ("-received_at", "-pk")
    fields = (
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
        "pretty_payload",
    )
    readonly_fields = fields

    def get_changelist(self, request, **kwargs):
        return DeliveryChangeList

    @admin.display(description="runs")
    def runs_started(self, delivery: Delivery) -> str | None:
        runs = list(delivery.runs.all())
        if not runs:
            return None
        links = format_html_join(
            ", ",
            '<a href="{}" title="run {} {}">{} {}</a>',
            (
                (
                    reverse("admin:runner_run_change", args=[run.pk]),
                    run.pk,
                    run.get_status_display(),
                    run.pipeline,
                    look_of(run.status).symbol or run.status,
                )
                for run in runs
            ),
        )
        return format_html("{}: {}", counted(len(runs), "run"), links)

    @admin.display(description="payload")
    def pretty_payload(self, delivery: Delivery) -> str:
        text = json.dumps(delivery.payload, indent=2, ensure_ascii=False)
        return format_html('<pre class="payload" style="white-space: pre-wrap">{}</pre>', text)

    @admin.action(description="Replay against the current pipelines.yaml", permissions=["replay"])
    def replay(self, request, queryset) -> None:
        for delivery in queryset.order_by("pk"):
            try:
                result = replay_delivery(delivery)
            except PipelinesError as error:
                # No configuration was ever valid: every other delivery would fail alike.
                self.message_user(request, f"nothing replayed: {error}", messages.ERROR)
                return
            except (NotReplayable, BadDelivery, AmbiguousPipelines) as error:
                self._tell(request, delivery, f"not replayed: {error}", messages.WARNING)
                continue
            level = messages.SUCCESS if result.run_ids else messages.WARNING
            self._tell(request, delivery, result.summary(), level)

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("runner.replay_delivery")

    def _tell(self, request, delivery: Delivery, text: str, level: int) -> None:
        self.message_user(request, f"delivery {delivery.delivery_id}: {text}", level)
