"""Runs in admin: the list, a run's page with its steps and live output, and the actions
(cancel, run again, redact) for those allowed to take them."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from runner.admin.common import ReadOnlyAdmin
from runner.admin.deployments import approval_context, decide_run, deploy_run_again
from runner.admin.display import (
    badge_of,
    branch_or_pull_request,
    commit_link,
    duration_text,
    run_summary,
)
from runner.admin.log_views import run_raw, step_lines, step_raw, step_search
from runner.admin.manual import start_run
from runner.admin.redact import redact
from runner.admin.run_page import live_update, run_page_context
from runner.config.github import ACTED_ON_EVENTS
from runner.models import Delivery, Run
from runner.runs.lifecycle import cancel, rerun


class RedactForm(forms.Form):
    value = forms.CharField(
        widget=forms.PasswordInput, strip=False, help_text="It is not stored or logged anywhere."
    )


def with_commits(runs: QuerySet) -> QuerySet:
    """`runs` with their delivery but not its payload, of which only the commit link's
    address and the commit's message are read, by subqueries, which a count and filters
    leave out: as `repository_url` and `commit_message`."""
    delivery = Delivery.objects.filter(pk=OuterRef("delivery_id"))
    repository_url = delivery.values(url=KT("payload__repository__html_url"))
    # A push's runs are of its head commit; a pull request's title says the most of its
    # commits.
    message = delivery.values(
        message=Coalesce(KT("payload__head_commit__message"), KT("payload__pull_request__title"))
    )
    return (
        runs.select_related("delivery")
        .defer("delivery__payload")
        .annotate(repository_url=Subquery(repository_url), commit_message=Subquery(message))
    )


class PipelineFilter(admin.SimpleListFilter):
    title = parameter_name = "pipeline"

    def lookups(self, request, model_admin):
        # Django's own choices, SELECT DISTINCT pipeline, read every run (28 ms at 100,000
        # runs, bench/admin.py); the pairs with the repository read only the
        # run_pipeline_newest index.
        pairs = Run.objects.order_by().values_list("repository", "pipeline").distinct()
        return [(name, name) for name in sorted({pipeline for _, pipeline in pairs})]

    def queryset(self, request, queryset):
        return queryset.filter(pipeline=self.value()) if self.value() else queryset


class EventFilter(admin.SimpleListFilter):
    title = parameter_name = "event"

    def lookups(self, request, model_admin):
        # Runs start only from the events hookrunner acts on: no need to read every run
        # for them (54 ms at 100,000 runs).
        return [(event, event) for event in sorted(ACTED_ON_EVENTS)]

    def queryset(self, request, queryset):
        return queryset.filter(event=self.value()) if self.value() else queryset


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    # When it started is on the run's page: ten columns fit a 1440 px screen.
    list_display = (
        "number", "status_shown", "repository", "pipeline", "branch", "commit", "summary",
        "actor", "created_at", "took",
    )  # fmt: skip
    list_filter = ("status", "repository", PipelineFilter, EventFilter, "created_at")
    search_fields = ("^sha", "ref", "=pr_number", "=delivery__delivery_id")
    search_help_text = "A sha (or its start), a branch, a PR number or a delivery id."
    ordering = ("-id",)
    list_per_page = 50
    # Counting every run on every page load would cost more than the page itself.
    show_full_result_count = False
    actions = ("cancel", "run_again", "redact_selected")

    class Media:
        css = {"all": ("runner/hookrunner.css", "runner/history.css")}
        js = ("runner/history.js",)

    def get_queryset(self, request: HttpRequest):
        # A join in the base queryset would reach every filter's DISTINCT and the count
        # too (223 of 390 ms at 100,000 runs, bench/admin.py); select_related joins only
        # the page's rows. Payloads and definitions are not shown in the list.
        return with_commits(super().get_queryset(request).defer("definition"))

    def get_urls(self):
        own = [
            path("<int:run_id>/live/", self.admin_site.admin_view(self.live), name="run_live"),
            path("<int:run_id>/steps/<int:number>/lines/",
                 self.admin_site.admin_view(self.lines), name="run_step_lines"),
            path("<int:run_id>/steps/<int:number>/search/",
                 self.admin_site.admin_view(self.search_step), name="run_step_search"),
            path("<int:run_id>/steps/<int:number>/raw/",
                 self.admin_site.admin_view(self.raw_step), name="run_step_raw"),
            path("<int:run_id>/raw/", self.admin_site.admin_view(self.raw_run), name="run_raw"),
            path("<int:run_id>/cancel/", self.admin_site.admin_view(self.cancel_one),
                 name="run_cancel"),
            path("<int:run_id>/rerun/", self.admin_site.admin_view(self.rerun_one),
                 name="run_rerun"),
            path("redact/", self.admin_site.admin_view(self.redact_all), name="run_redact_all"),
            path("start/", self.admin_site.admin_view(start_run), name="run_start"),
            path("<int:run_id>/decide/", self.admin_site.admin_view(decide_run),
                 name="run_decide"),
            path("<int:run_id>/deploy-again/", self.admin_site.admin_view(deploy_run_again),
                 name="run_deploy_again"),
        ]  # fmt: skip
        return own + super().get_urls()

    @admin.display(description="run", ordering="id")
    def number(self, run: Run) -> str:
        return f"#{run.pk}"

    @admin.display(description="status", ordering="status")
    def status_shown(self, run: Run):
        return badge_of(run)

    @admin.display(description="branch or PR")
    def branch(self, run: Run) -> str:
        return branch_or_pull_request(run)

    @admin.display(description="commit")
    def commit(self, run: Run):
        return commit_link(run, run.repository_url)

    @admin.display(description="message · why it failed")
    def summary(self, run: Run):
        return run_summary(run, run.commit_message)

    @admin.display(description="pushed by", ordering="delivery__sender")
    def actor(self, run: Run) -> str:
        return run.delivery.sender

    @admin.display(description="duration")
    def took(self, run: Run) -> str:
        return duration_text(run.duration)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self._run_to_view(request, object_id, Run.objects.select_related("delivery"))
        context = {
            **self.admin_site.each_context(request),
            **run_page_context(run),
            **approval_context(request.user, run),
            "opts": self.opts,
            "title": f"{run.repository} {run.pipeline} #{run.pk}",
            "may_cancel": self.has_cancel_permission(request),
            "may_rerun": self.has_rerun_permission(request),
        }
        return TemplateResponse(request, "admin/runner/run/page.html", context)

    def live(self, request: HttpRequest, run_id: int) -> JsonResponse:
        """What changed since the chunk the page shows last: for its script."""
        # Polled every second while the page is open: the definition is not needed.
        run = self._run_to_view(request, run_id, Run.objects.defer("definition"))
        return JsonResponse(live_update(run, _number(request, "after", 0)))

    def lines(self, request: HttpRequest, run_id: int, number: int) -> JsonResponse:
        """A range of a step's lines (`first`, `last`, from 1), for the page's script."""
        run = self._run_to_view(request, run_id)
        first, last = _number(request, "first", 1), _number(request, "last", 2**31)
        return JsonResponse(step_lines(run, number, first, last))

    def search_step(self, request: HttpRequest, run_id: int, number: int) -> JsonResponse:
        """The lines of a step holding the text `q`, for the page's script."""
        run = self._run_to_view(request, run_id)
        return JsonResponse(step_search(run, number, request.GET.get("q", "")))

    def raw_step(self, request: HttpRequest, run_id: int, number: int) -> HttpResponseBase:
        return step_raw(self._run_to_view(request, run_id), number)

    def raw_run(self, request: HttpRequest, run_id: int) -> HttpResponseBase:
        return run_raw(self._run_to_view(request, run_id))

    def _run_to_view(self, request: HttpRequest, run_id, runs=None) -> Run:
        """Run `run_id` of `runs` (by default only its id), if the user may view runs."""
        run = get_object_or_404(Run.objects.only("pk") if runs is None else runs, pk=run_id)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        return run

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("runner.cancel_run")

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("runner.rerun_run")

    def has_redact_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("runner.redact_output")

    @admin.action(description="Cancel selected runs", permissions=["cancel"])
    def cancel(self, request, queryset) -> None:
        for run in queryset:
            self.message_user(request, f"run {run.pk}: {cancel(run)}")

    @admin.action(description="Run selected runs again", permissions=["rerun"])
    def run_again(self, request, queryset) -> None:
        for run in queryset:
            again = rerun(run, by=request.user.get_username())
            self.message_user(request, _queued_again(run, again))

    @admin.action(description="Redact a value from the output of selected runs",
                  permissions=["redact"])  # fmt: skip
    def redact_selected(self, request, queryset):
        form = RedactForm(request.POST if "value" in request.POST else None)
        if form.is_bound and form.is_valid():
            return self._redact(request, form, queryset)
        return self._redact_form(request, form, queryset)

    def redact_all(self, request: HttpRequest) -> HttpResponse:
        if not self.has_redact_permission(request):
            raise PermissionDenied
        form = RedactForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            return self._redact(request, form, None)
        return self._redact_form(request, form, None)

    def _redact(self, request, form: RedactForm, runs) -> HttpResponseRedirect:
        try:
            redaction = redact(form.cleaned_data["value"], runs, request.user.get_username())
        except ValueError as refusal:
            self.message_user(request, str(refusal), messages.ERROR)
        else:
            self.message_user(
                request, f"Redacted from {redaction.scope}: {redaction.chunks_changed} pieces "
                "of output changed."
            )  # fmt: skip
        return HttpResponseRedirect(reverse("admin:runner_run_changelist"))

    def _redact_form(self, request, form: RedactForm, runs) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Redact a value from stored output",
            "form": form,
            "runs": runs,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/runner/run/redact.html", context)

    @method_decorator(require_POST)
    def cancel_one(self, request: HttpRequest, run_id: int) -> HttpResponseRedirect:
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        run = get_object_or_404(Run, pk=run_id)
        self.message_user(request, f"run {run.pk}: {cancel(run)}")
        return _page_of(run)

    @method_decorator(require_POST)
    def rerun_one(self, request: HttpRequest, run_id: int) -> HttpResponseRedirect:
        if not self.has_rerun_permission(request):
            raise PermissionDenied
        run = get_object_or_404(Run, pk=run_id)
        again = rerun(run, by=request.user.get_username())
        self.message_user(request, _queued_again(run, again))
        return _page_of(again)


def _number(request: HttpRequest, name: str, default: int) -> int:
    """Query parameter `name` as a whole number, `default` when absent or not one."""
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else default


def _page_of(run: Run) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:runner_run_change", args=[run.pk]))


def _queued_again(run: Run, again: Run) -> SafeString:
    page = reverse("admin:runner_run_change", args=[again.pk])
    return format_html('run {}: queued again as <a href="{}">run {}</a>', run.pk, page, again.pk)
