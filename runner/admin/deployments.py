"""Deployments in admin, for those allowed to: approving or rejecting a run waiting for
approval, and deploying an earlier commit of an environment again. What may be done is
runner.runs.deployments' to say; these views ask it and say what it answered."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from runner.config.repositories import Config
from runner.config.store import pipelines_in_force
from runner.models import Run
from runner.runs.deployments import (
    DeployRefused,
    User,
    approvers_of,
    decide,
    deploy_again,
    may_approve,
)


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    reason = forms.CharField(max_length=500, required=False)


class DeployAgainForm(forms.Form):
    reason = forms.CharField(
        max_length=500, required=False, help_text="Shown with the run and in the history."
    )


def waiting_for_approval(run: Run) -> bool:
    return run.status == Run.Status.WAITING and run.waiting_for == Run.WaitingFor.APPROVAL


def approval_context(user: User, run: Run) -> dict[str, Any]:
    """Who may approve `run` while it waits for approval, and whether `user` may."""
    waiting = waiting_for_approval(run)
    return {
        "waiting_for_approval": waiting,
        "approvers": approvers_of(run) if waiting else "",
        "may_approve": waiting and may_approve(user, run),
    }


def approvable(user: User, runs: list[Run]) -> set[int]:
    """The runs among `runs` that `user` may approve. may_approve depends only on the
    user and the approvers a run's pipeline names: it is asked once per approvers."""
    answers: dict[str, bool] = {}
    for run in runs:
        if _approvers(run) not in answers:
            answers[_approvers(run)] = may_approve(user, run)
    return {run.pk for run in runs if answers[_approvers(run)]}


def _approvers(run: Run) -> str:
    approval = run.definition.approval
    return approval.approvers if approval else ""


def run_url(run_id: int) -> str:
    return reverse("admin:runner_run_change", args=[run_id])


def back_to(request: HttpRequest, default: str) -> HttpResponseRedirect:
    """To the page the form was on (its `next` field), if it is one of this site's."""
    wanted = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return HttpResponseRedirect(wanted if safe and wanted else default)


@require_POST
def decide_run(request: HttpRequest, run_id: int) -> HttpResponseRedirect:
    """Approve or reject a run waiting for approval, with an optional reason."""
    run = get_object_or_404(Run, pk=run_id)
    if not may_approve(request.user, run):
        raise PermissionDenied
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Approve or reject: nothing was decided.")
        return back_to(request, run_url(run.pk))
    approved = form.cleaned_data["decision"] == "approve"
    try:
        decide(run, approved, request.user.get_username(), form.cleaned_data["reason"])
    except DeployRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, f"run {run.pk}: {'approved' if approved else 'rejected'}")
    return back_to(request, run_url(run.pk))


def config_in_force() -> Config:
    config = pipelines_in_force()
    if config is None:
        raise DeployRefused("pipelines.yaml has never been valid: there is nothing to run")
    return config


def deploy_run_again(request: HttpRequest, run_id: int) -> TemplateResponse | HttpResponseRedirect:
    """Asks first (with an optional reason), then deploys an earlier successful run's
    commit to its environment again, as a rollback of what is live there."""
    if not request.user.has_perm("runner.deploy"):
        raise PermissionDenied
    target = get_object_or_404(Run, pk=run_id)
    form = DeployAgainForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            again = deploy_again(
                config_in_force(), target, request.user.get_username(), form.cleaned_data["reason"]
            )
        except DeployRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(request, _deployed_again(target, again))
            return HttpResponseRedirect(run_url(again.pk))
    live = Run.objects.live(target.repository, target.environment)
    context = {
        **admin.site.each_context(request),
        "title": f"Deploy run #{target.pk} to {target.environment or 'its environment'} again",
        "target": target,
        "live": live,
        "approval": target.definition.approval,
        "form": form,
    }
    return TemplateResponse(request, "admin/runner/run/deploy_again.html", context)


def _deployed_again(target: Run, again: Run) -> str:
    return format_html(
        '{} of {}: {} deployed again as <a href="{}">run {}</a>',
        target.environment,
        target.repository,
        target.sha[:7],
        run_url(again.pk),
        again.pk,
    )
