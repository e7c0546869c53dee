"""What the admin's deployment tests share: a pipelines file whose `deploy` pipeline
deploys acme/webapp to production once a member of `deployers` approves, and rows for its
deployments."""

import textwrap
from pathlib import Path

from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone

from runner.config.definition import RunDefinition
from runner.config.pipelines import Pipeline
from runner.config.store import current_pipelines
from runner.models import Run
from runner.runs.deployments import Commit, pipeline_of, start
from tests.browser import PASSWORD
from tests.rows import make_delivery, make_run

PIPELINES = """\
repositories:
  acme/webapp:
    clone_url: {clone_url}
    pipelines:
      deploy:
        on:
          manual:
            inputs:
              level: {{description: How much it says, default: normal, choices: [normal, verbose]}}
              note: {{description: Said in the log, required: false}}
        environment: {{name: production, url: "https://webapp.example.com"}}
        approval: required
        approvers: deployers
        steps: [{{name: ship, run: echo shipped}}]
      test:
        on: {{push: null}}
        steps: [{{name: check, run: "true"}}]
"""


def configure(settings, tmp_path: Path, clone_url: str = "https://github.invalid/x.git") -> None:
    path = tmp_path / "config" / "pipelines.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(PIPELINES.format(clone_url=clone_url)))
    settings.PIPELINES_FILE = path
    settings.WORKSPACES_DIR = tmp_path / "workspaces"
    settings.MIRRORS_DIR = tmp_path / "mirrors"


def deploy_pipeline() -> Pipeline:
    return pipeline_of(current_pipelines(), "acme/webapp", "deploy")


def deployment(sha: str, message: str = "", status: str = "succeeded") -> Run:
    """A push's run of deploy at `sha` that ended with `status`."""
    payload = {
        "head_commit": {"message": message},
        "repository": {"html_url": "https://github.com/acme/webapp"},
    }
    return make_run(
        make_delivery(payload=payload, sender="octocat"),
        pipeline="deploy",
        status=status,
        sha=sha,
        ref="refs/heads/main",
        environment="production",
        definition=RunDefinition.of(deploy_pipeline(), from_fork=False),
        finished_at=timezone.now(),
    )


def waiting_for_approval(sha: str = "c" * 40, by: str = "alice") -> Run:
    """A run of deploy a person started, waiting for approval."""
    run = start(deploy_pipeline(), "acme/webapp", Commit(sha, "refs/heads/main"),
                {"level": "verbose"}, by)  # fmt: skip
    assert run.waiting_for == Run.WaitingFor.APPROVAL, run.detail
    return run


def person(name: str, *permissions: str, groups: tuple[str, ...] = ()) -> User:
    """A staff user who may view runs, with `permissions` and in `groups`, whose password
    is the browser tests'."""
    user = User.objects.create_user(name, password=PASSWORD, is_staff=True)
    codenames = ["view_run", "view_delivery", *permissions]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    user.groups.add(*(Group.objects.get_or_create(name=group)[0] for group in groups))
    return user
