"""The Run pipeline form: a person starts a pipeline with `on: manual` for a branch, tag or
sha, giving its inputs. In two steps: pick a repository's pipeline from a list, then give
the commit and the inputs. The commit is resolved through the mirror (runner.execution.
refs) before the run is made."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from runner.admin.deployments import config_in_force, run_url
from runner.config.pipelines import Input, Pipeline
from runner.config.repositories import AmbiguousPipelines, Config
from runner.config.repository_patterns import is_exact
from runner.execution import refs
from runner.models import Run
from runner.runs.deployments import DeployRefused, clone_url_of, manual_pipeline, start

INPUT_PREFIX = "input_"
# The ref is looked up within the web request: it holds one of the web process's threads,
# which also answer GitHub's deliveries, and the person's request, which nginx gives up on
# after 60 s (deploy/nginx.conf). The look-up gives up first. A first clone that takes
# longer goes through `manage.py deploy` (refs.GIT_SECONDS), or a run's checkout, which
# fill the same mirror.
RESOLVE_SECONDS = 20


class StartForm(forms.Form):
    ref = forms.CharField(
        label="Branch, tag or sha", max_length=255, help_text="main, v1.4.2, a commit's sha..."
    )

    def __init__(self, pipeline: Pipeline, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for entry in pipeline.manual.inputs if pipeline.manual else ():
            self.fields[INPUT_PREFIX + entry.name] = input_field(entry)

    def inputs(self) -> dict[str, str]:
        """The inputs given; one left blank takes its default."""
        return {
            name.removeprefix(INPUT_PREFIX): value
            for name, value in self.cleaned_data.items()
            if name.startswith(INPUT_PREFIX) and value != ""
        }


def input_field(entry: Input) -> forms.Field:
    required = entry.default is None
    if entry.choices:
        return forms.ChoiceField(
            label=entry.name,
            choices=[(choice, choice) for choice in entry.choices],
            initial=entry.default,
            required=required,
            help_text=entry.description,
        )
    return forms.CharField(
        label=entry.name,
        initial=entry.default,
        required=required,
        strip=False,
        help_text=entry.description,
    )


def manual_pipelines(config: Config) -> list[tuple[str, Pipeline]]:
    """Each repository pipelines.yaml names literally or runs were made for, with each of
    its pipelines a person may start, by repository."""
    named = [entry.pattern for entry in config.repositories if is_exact(entry.pattern)]
    # The pairs with the pipeline read only the run_pipeline_newest index.
    seen = Run.objects.order_by().values_list("repository", "pipeline").distinct()
    names = {name.lower(): name for name in [*(name for name, _ in seen), *named]}
    return [
        (name, pipeline)
        for name in sorted(names.values(), key=str.lower)
        for pipeline in _startable(config, name)
    ]


def _startable(config: Config, name: str) -> list[Pipeline]:
    covered = config.repository(name)
    try:
        pipelines = covered.pipelines if covered else ()
    except AmbiguousPipelines:
        return []
    return [pipeline for pipeline in pipelines if pipeline.manual is not None]


def start_run(request: HttpRequest) -> TemplateResponse | HttpResponseRedirect:
    """The list of pipelines to pick from; with one picked (`repository`, `pipeline`),
    its form, which starts the run and goes to its page."""
    if not request.user.has_perm("runner.deploy"):
        raise PermissionDenied
    repository, name = request.GET.get("repository", ""), request.GET.get("pipeline", "")
    context = {**admin.site.each_context(request), "title": "Run pipeline"}
    try:
        config = config_in_force()
        if not (repository and name):
            context["pipelines"] = manual_pipelines(config)
            return TemplateResponse(request, "admin/runner/run/start.html", context)
        pipeline = manual_pipeline(config, repository, name)
    except DeployRefused as refusal:
        messages.error(request, str(refusal))
        return HttpResponseRedirect(reverse("admin:runner_run_changelist"))
    form = StartForm(pipeline, request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            run = _start(request, pipeline, repository, form)
        except DeployRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(request, f"Run {run.pk}: {pipeline.name} of {repository} started")
            return HttpResponseRedirect(run_url(run.pk))
    context.update(repository=repository, pipeline=pipeline, form=form)
    return TemplateResponse(request, "admin/runner/run/start.html", context)


def _start(request: HttpRequest, pipeline: Pipeline, repository: str, form: StartForm) -> Run:
    wanted = form.cleaned_data["ref"].strip()
    commit = refs.resolve(clone_url_of(repository, pipeline), wanted, RESOLVE_SECONDS)
    return start(pipeline, repository, commit, form.inputs(), request.user.get_username())
