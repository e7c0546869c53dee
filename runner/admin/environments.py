"""The environments page: for each repository's environment, what is live, what is on
its way (with Approve and Reject while it waits for approval), its lock, and its last
runs, each earlier successful one with "Deploy this again". Locking and unlocking too.

A handful of queries per environment (runner.runs.deployments.environments, then its
history with each run's delivery): a team has a few environments, not hundreds."""

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from runner.admin.deployments import waiting_for_approval
from runner.admin.display import WEB_SCHEMES, badge_of, commit_link, first_line
from runner.admin.runs import with_commits
from runner.models import Run
from runner.runs import lifecycle
from runner.runs.deployments import (
    EnvironmentState,
    User,
    approvers_of,
    environments,
    may_approve,
)

# How many of an environment's runs its history shows, newest first.
HISTORY_LENGTH = 20


class EnvironmentForm(forms.Form):
    repository = forms.CharField(max_length=200)
    environment = forms.CharField(max_length=100)


class LockForm(EnvironmentForm):
    reason = forms.CharField(max_length=500)


@dataclass(frozen=True)
class RunShown:
    """A run of an environment as its page shows it."""

    run: Run
    status: SafeString
    commit: SafeString
    message: str
    by: str
    # An earlier successful deployment, not the live one: it may be deployed again.
    earlier: bool

    @property
    def rollback(self) -> str:
        """ "rollback of run 12: broke the login", or "" for a run that is not one."""
        if not self.run.rollback_of_id:
            return ""
        reason = f": {self.run.reason}" if self.run.reason else ""
        return f"rollback of run {self.run.rollback_of_id}{reason}"


@dataclass(frozen=True)
class EnvironmentShown:
    state: EnvironmentState
    # Its last runs, newest first.
    history: list[RunShown]
    live: RunShown | None
    in_progress: RunShown | None
    approvers: str
    may_approve: bool

    @property
    def anchor(self) -> str:
        return f"{self.state.repository}/{self.state.environment}".replace(" ", "-")

    @property
    def url(self) -> str:
        url = self.state.url
        return url if url.startswith(WEB_SCHEMES) else ""


def started_by(run: Run) -> str:
    """Who started a run: the person who asked for it, else what GitHub sent and by whom."""
    if run.requested_by:
        return run.requested_by
    if run.rerun_by:
        return f"{run.rerun_by} (re-run of #{run.rerun_of_id})"
    sender = run.delivery.sender
    return f"{run.event} by {sender}" if sender else run.event


def run_shown(run: Run, live: Run | None) -> RunShown:
    earlier = run.status == Run.Status.SUCCEEDED and live is not None and run.pk != live.pk
    return RunShown(
        run,
        badge_of(run),
        commit_link(run, run.repository_url),
        first_line(run.commit_message),
        started_by(run),
        earlier,
    )


def shown(user: User, state: EnvironmentState) -> EnvironmentShown:
    runs = Run.objects.deployments(state.repository, state.environment)
    history = [run_shown(run, state.live) for run in with_commits(runs)[:HISTORY_LENGTH]]
    in_progress = state.in_progress
    waiting = in_progress is not None and waiting_for_approval(in_progress)
    return EnvironmentShown(
        state,
        history,
        _among(history, state.live, state.live),
        _among(history, in_progress, state.live),
        approvers_of(in_progress) if waiting else "",
        waiting and may_approve(user, in_progress),
    )


def _among(history: list[RunShown], run: Run | None, live: Run | None) -> RunShown | None:
    """`run` as the history shows it; read with its commit if it is older than that."""
    if run is None:
        return None
    found = next((each for each in history if each.run.pk == run.pk), None)
    return found or run_shown(with_commits(Run.objects.filter(pk=run.pk)).get(), live)


def environments_page(request: HttpRequest) -> TemplateResponse:
    if not request.user.has_perm("runner.view_run"):
        raise PermissionDenied
    repository = request.GET.get("repository", "")
    context = {
        **admin.site.each_context(request),
        "title": "Environments",
        "repository": repository,
        "environments": [shown(request.user, state) for state in environments(repository)],
        "may_deploy": request.user.has_perm("runner.deploy"),
        "may_lock": request.user.has_perm("runner.lock_environment"),
        "here": request.get_full_path(),
    }
    return TemplateResponse(request, "admin/runner/environments.html", context)


@require_POST
def lock_environment(request: HttpRequest) -> HttpResponseRedirect:
    """Freeze an environment, saying why."""
    form = _environment_form(request, LockForm)
    if form is not None:
        data = form.cleaned_data
        by = request.user.get_username()
        # Locked already, it keeps the first lock: the message says whose it is.
        held = lifecycle.lock(data["repository"], data["environment"], by, data["reason"])
        messages.success(request, f"In {data['repository']}, {held.words}")
    return _back_to_page()


@require_POST
def unlock_environment(request: HttpRequest) -> HttpResponseRedirect:
    """End an environment's freeze; the runs it held go on."""
    form = _environment_form(request, EnvironmentForm)
    if form is not None:
        data = form.cleaned_data
        released = lifecycle.unlock(data["repository"], data["environment"])
        messages.success(request, _unlocked(data["repository"], data["environment"], released))
    return _back_to_page()


def _environment_form(request: HttpRequest, form_class: type[EnvironmentForm]) -> Any:
    """The posted form if it is valid, else None with a message saying what is missing."""
    if not request.user.has_perm("runner.lock_environment"):
        raise PermissionDenied
    form = form_class(request.POST)
    if form.is_valid():
        return form
    missing = ", ".join(form.errors)
    messages.error(request, f"Nothing was changed: {missing} must be given.")
    return None


def _unlocked(repository: str, environment: str, released: list[int] | None) -> str:
    where = f"{environment} of {repository}"
    if released is None:
        return f"{where} was not locked"
    runs = ", ".join(f"#{pk}" for pk in released)
    return f"{where}: unlocked" + (f"; runs {runs} go on" if runs else "")


def _back_to_page() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:runner_environments"))


def _urls_with_environments() -> list:
    view = admin.site.admin_view
    own = [
        path("runner/environments/", view(environments_page), name="runner_environments"),
        path("runner/environments/lock/", view(lock_environment), name="runner_environment_lock"),
        path("runner/environments/unlock/", view(unlock_environment),
             name="runner_environment_unlock"),
    ]  # fmt: skip
    return own + _django_urls()


# The site builds its URLs after every admin module is imported, as for the index.
_django_urls = admin.site.get_urls
admin.site.get_urls = _urls_with_environments
