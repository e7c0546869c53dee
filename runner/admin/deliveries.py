"""Deliveries in admin: what GitHub sent, the runs each one started, and replaying it."""

import json

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from runner.admin.common import ReadOnly, ReadOnlyAdmin
from runner.admin.display import badge_of
from runner.config.github import BadDelivery
from runner.config.pipelines_file import PipelinesError
from runner.config.repositories import AmbiguousPipelines
from runner.config.text import counted
from runner.models import Delivery, Run
from runner.models.statuses import look_of
from runner.runs.replay import NotReplayable
from runner.runs.replay import replay as replay_delivery

# What is still going on: the list marks it (class hr-unended), and history.js reloads
# the list while any is shown.
UNENDED_RUNS = frozenset({Run.Status.QUEUED, Run.Status.RUNNING})

# All the list needs of a delivery's runs, fetched in one query for the whole page.
RUNS_IN_LIST = Prefetch(
    "runs", queryset=Run.objects.only("pk", "delivery_id", "pipeline", "status").order_by("pk")
)


class RunInline(ReadOnly, admin.TabularInline):
    model = Run
    fields = ("pipeline", "status_shown", "queue", "sha", "created_at")
    readonly_fields = fields
    show_change_link = True
    extra = 0
    can_delete = False

    @admin.display(description="status")
    def status_shown(self, run: Run) -> SafeString:
        return badge_of(run)


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
        "status_shown",
        "runs_started",
        "detail",
    )
    list_filter = ("status", "event", "repository")
    search_fields = ("delivery_id", "repository", "ref", "sender")
    date_hierarchy = "received_at"
    ordering = ("-received_at", "-pk")
    # Its runs come first (change_form.html), then what the delivery was; the payload,
    # long and seldom read, stays folded below them.
    fieldsets = (
        (
            None,
            {
                "fields": (
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
                )
            },
        ),
        ("Payload", {"fields": ("pretty_payload",), "classes": ("collapse",)}),
    )
    readonly_fields = tuple(field for _, options in fieldsets for field in options["fields"])

    def get_changelist(self, request, **kwargs):
        return DeliveryChangeList

    @admin.display(description="status", ordering="status")
    def status_shown(self, delivery: Delivery) -> SafeString | str:
        # Received: the receiver is still matching it against the pipelines.
        if delivery.status == Delivery.Status.RECEIVED:
            return format_html('<span class="hr-unended">{}</span>', delivery.get_status_display())
        return delivery.get_status_display()

    @admin.display(description="runs")
    def runs_started(self, delivery: Delivery) -> str | None:
        runs = list(delivery.runs.all())
        if not runs:
            return None
        links = format_html_join(
            ", ",
            '<a href="{}" title="run {} {}"{}>{} {}</a>',
            (
                (
                    reverse("admin:runner_run_change", args=[run.pk]),
                    run.pk,
                    run.get_status_display(),
                    SafeString(' class="hr-unended"' if run.status in UNENDED_RUNS else ""),
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
