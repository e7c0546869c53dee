"""GitHub deployments: each run of a pipeline with an environment creates one, then reports
its statuses (queued, in_progress, then success, failure or error; inactive for the one
it replaces), posted to a GitHub-shaped server on loopback by the outgoing tasks, in
order, retried and recorded like commit statuses."""

import textwrap

import pytest
from django.urls import reverse

from runner.config.store import pipelines_in_force
from runner.models import Outgoing, Run
from runner.outgoing.attempt import attempt
from runner.runs import lifecycle
from runner.runs.deployments import Commit, manual_pipeline, rollback, start
from tests.conftest import SignedDelivery, executed, send_queued
from tests.fake_github import Answer, FakeGitHub

pytestmark = pytest.mark.django_db

TOKEN = "ghp_deployment_test_token_1a2b3c"
TOKEN_ENV = "HR_TEST_TOKEN"
SHA = "fdf0d9b48aca90fb0019f29d9611992528323408"  # push__branch's after
SHA_1, SHA_2 = "1" * 40, "2" * 40
DEPLOYMENTS = r"/repos/acme/webapp/deployments"
# test runs on a push to `test_branches` only (release): on a push to main, a deploy that
# needs it is skipped at once.
DEPLOY = """\
    test:
      on: {{push: {{branches: {test_branches}}}}}
      steps: [{{name: test, run: 'true'}}]
    deploy:
      on: [push, manual]
      {environment}
      {extra}
      steps: [{{name: deploy, run: '{command}'}}]
    """
PRODUCTION = "{name: production, url: 'https://shop.example.com'}"


@pytest.fixture
def github(github_api, monkeypatch):
    """The fake GitHub, answering with success, and this module's token set."""
    monkeypatch.setenv("HR_TEST_TOKEN", TOKEN)
    return github_api.deployments().deployment_statuses(201)


@pytest.fixture
def deploying(settings, tmp_path):
    """Write pipelines.yaml: acme/webapp (token_env HR_TEST_TOKEN unless `token_env` is
    empty, no commit statuses) with a deploy pipeline to `environment` (none if empty),
    running `command`, with an `extra` line."""

    def configure(
        environment: str = PRODUCTION,
        command: str = "true",
        token_env: str = TOKEN_ENV,
        extra: str = "",
        test_branches: str = "[release]",
    ) -> None:
        settings.WORKSPACES_DIR = tmp_path / "workspaces"
        path = tmp_path / "config" / "pipelines.yaml"
        path.parent.mkdir(exist_ok=True)
        pipelines = textwrap.indent(
            textwrap.dedent(DEPLOY).format(
                environment=f"environment: {environment}" if environment else "",
                command=command,
                extra=extra,
                test_branches=test_branches,
            ),
            "      ",
        )
        token = f"    token_env: {token_env}\n" if token_env else ""
        path.write_text(
            f"repositories:\n  acme/webapp:\n{token}    report_status: false\n"
            f"    pipelines:\n{pipelines}"
        )
        settings.PIPELINES_FILE = path

    return configure


@pytest.fixture
def pushed(post_delivery):
    """Push to acme/webapp main: its deploy run, queued."""

    def push() -> Run:
        (run_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
        return Run.objects.get(pk=run_id)

    return push


def deploy_by_hand(sha: str) -> Run:
    pipeline = manual_pipeline(pipelines_in_force(), "acme/webapp", "deploy")
    return start(pipeline, "acme/webapp", Commit(sha, "refs/heads/main"), {}, "alice")


def page_of(run: Run) -> str:
    return "https://ci.example.com" + reverse("admin:runner_run_change", args=[run.pk])


def deployments_sent(github: FakeGitHub) -> list[dict]:
    return [r.json for r in github.requests_to(DEPLOYMENTS, "POST")]


def statuses_sent(github: FakeGitHub, deployment_id: int) -> list[dict]:
    return [r.json for r in github.requests_to(rf"{DEPLOYMENTS}/{deployment_id}/statuses")]


def states_sent(github: FakeGitHub, deployment_id: int) -> list[str]:
    return [body["state"] for body in statuses_sent(github, deployment_id)]


def ended(run: Run, status: str, detail: str = "") -> Run:
    """The run claimed by a worker, then finished as `status`."""
    assert lifecycle.claim(run, "box:1")
    lifecycle.finish(run, status, detail)
    run.refresh_from_db()
    return run


def statuses_of(run: Run) -> list[Outgoing]:
    return list(run.outgoing.filter(kind=Outgoing.Kind.DEPLOYMENT_STATUS).order_by("pk"))


# End to end.


def test_a_push_deploys_with_a_deployment_then_queued_in_progress_success(
    github, deploying, pushed
):
    deploying()
    run = pushed()
    send_queued()
    assert lifecycle.claim(run, "box:1")
    send_queued()
    lifecycle.finish(run, "succeeded", "1 step succeeded")
    send_queued()
    run.refresh_from_db()
    (deployment,) = deployments_sent(github)
    assert deployment == {
        "ref": SHA,
        "environment": "production",
        "auto_merge": False,
        "required_contexts": [],
        "description": f"hookrunner run {run.pk} of deploy",
        "payload": {"run": run.pk, "pipeline": "deploy"},
    }
    assert run.github_deployment_id == 1
    queued, in_progress, success = statuses_sent(github, 1)
    common = {
        "environment": "production",
        "log_url": page_of(run),
        "environment_url": "https://shop.example.com",
    }
    assert queued == {**common, "state": "queued", "description": "queued"}
    assert in_progress == {**common, "state": "in_progress", "description": "running"}
    assert success["state"] == "success"
    assert success["description"].startswith("1 step succeeded (")
    assert success.items() >= common.items()
    for sent in github.requests:
        assert sent.header("Authorization") == f"Bearer {TOKEN}"
        assert sent.header("X-GitHub-Api-Version") == "2022-11-28"
    assert set(run.outgoing.values_list("state", flat=True)) == {"sent"}


def test_statuses_go_out_in_the_order_they_were_made(github, deploying, pushed):
    deploying()
    run = pushed()
    lifecycle.claim(run, "box:1")
    send_queued()
    sent = github.requests_to(rf"{DEPLOYMENTS}(/1/statuses)?")
    assert [r.path for r in sent] == [DEPLOYMENTS, *[f"{DEPLOYMENTS}/1/statuses"] * 2]
    assert [r.json.get("state") for r in sent[1:]] == ["queued", "in_progress"]


@pytest.mark.parametrize(
    ("status", "state"),
    [("failed", "failure"), ("timed_out", "failure"), ("error", "error"), ("cancelled", "error")],
)
def test_a_run_that_did_not_succeed_reports_failure_or_error(
    github, deploying, pushed, status, state
):
    deploying()
    run = pushed()
    send_queued()
    ended(run, status, "step deploy exited with 1")
    send_queued()
    *_, final = statuses_sent(github, 1)
    assert final["state"] == state
    assert final["description"].startswith("step deploy exited with 1")
    assert final["log_url"] == page_of(run)


def test_a_failing_step_reports_failure_and_no_stale_queued_or_in_progress(
    github, deploying, pushed
):
    deploying(command="false")
    run = executed(pushed().pk)
    send_queued()
    assert run.status == "failed"
    assert states_sent(github, 1) == ["failure"]
    queued, in_progress, _failure = statuses_of(run)
    assert queued.state == in_progress.state == Outgoing.State.GAVE_UP
    assert in_progress.error == "not sent: the run ended first; its final status is sent instead"


def test_an_environment_without_url_sends_no_environment_url(github, deploying, pushed):
    deploying(environment="staging")
    executed(pushed().pk)
    send_queued()
    (deployment,) = deployments_sent(github)
    assert deployment["environment"] == "staging"
    assert all("environment_url" not in body for body in statuses_sent(github, 1))
    assert [body["environment"] for body in statuses_sent(github, 1)] == ["staging"]


def test_a_waiting_run_is_queued_waiting_for_what_it_waits_for(github, deploying, pushed):
    deploying(extra="approval: required")
    run = pushed()
    assert run.status == "waiting"
    send_queued()
    (queued,) = statuses_sent(github, 1)
    assert (queued["state"], queued["description"]) == ("queued", run.detail)
    assert "approv" in run.detail


def test_a_run_skipped_as_it_is_queued_creates_no_deployment(github, deploying, pushed):
    deploying(extra="needs: [test]")
    run = pushed()
    assert run.status == "skipped"
    send_queued()
    assert not Outgoing.objects.filter(run=run, kind__startswith="deployment").exists()
    assert github.requests_to(DEPLOYMENTS + ".*") == []


def test_a_run_skipped_while_it_waits_makes_its_deployment_inactive_not_successful(
    github, deploying, post_delivery
):
    deploying(extra="needs: [test]", test_branches="[main]")
    runs = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    deploy, test = Run.objects.filter(pk__in=runs).order_by("pipeline")
    assert (deploy.pipeline, deploy.status) == ("deploy", "waiting")
    ended(test, "failed")
    deploy.refresh_from_db()
    assert deploy.status == "skipped"
    send_queued()
    # Created while it waited; its `queued` status, outdated by the end, is not sent.
    (created,) = github.requests_to(DEPLOYMENTS, method="POST")
    assert created.json["payload"]["run"] == deploy.pk
    (final,) = statuses_sent(github, 1)
    assert final["state"] == "inactive"
    assert final["description"].startswith("skipped: it needs test")


# What replaces what.


def test_a_new_success_makes_the_previous_deployment_inactive(github, deploying):
    deploying()
    first = executed(deploy_by_hand(SHA_1).pk)
    send_queued()
    second = executed(deploy_by_hand(SHA_2).pk)
    send_queued()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.github_deployment_id, second.github_deployment_id) == (1, 2)
    assert states_sent(github, 1) == ["success", "inactive"]
    inactive = statuses_sent(github, 1)[-1]
    assert inactive["description"] == f"replaced by run {second.pk}"
    assert inactive["log_url"] == page_of(first)
    assert states_sent(github, 2) == ["success"]
    assert statuses_of(first)[-1].state == Outgoing.State.SENT


def test_a_failed_deployment_leaves_the_live_one_active(github, deploying):
    deploying()
    executed(deploy_by_hand(SHA_1).pk)
    ended(deploy_by_hand(SHA_2), "failed")
    send_queued()
    assert states_sent(github, 1) == ["success"]
    assert states_sent(github, 2) == ["failure"]


def test_a_rollback_says_so_and_replaces_the_live_deployment(github, deploying):
    deploying()
    first = executed(deploy_by_hand(SHA_1).pk)
    second = executed(deploy_by_hand(SHA_2).pk)
    back = rollback(pipelines_in_force(), "acme/webapp", "production", "", "alice", "broken")
    back = executed(back.pk)
    send_queued()
    second.refresh_from_db()
    back.refresh_from_db()
    *_, rolled_back = deployments_sent(github)
    assert rolled_back["ref"] == first.sha
    assert rolled_back["description"] == (
        f"hookrunner run {back.pk} of deploy, rollback of run {second.pk}"
    )
    assert states_sent(github, second.github_deployment_id)[-1] == "inactive"
    assert states_sent(github, back.github_deployment_id)[-1] == "success"


# Nothing sent.


def test_no_token_env_no_deployment(github, deploying, pushed):
    deploying(token_env="")
    executed(pushed().pk)
    assert send_queued() == 0
    assert github.requests == []
    assert not Outgoing.objects.exists()


def test_no_environment_no_deployment(github, deploying, pushed):
    deploying(environment="")
    run = executed(pushed().pk)
    assert run.environment == ""
    assert send_queued() == 0
    assert not Outgoing.objects.exists()


def test_an_unset_token_gives_up_without_sending(github, deploying, pushed, monkeypatch):
    deploying()
    run = pushed()
    monkeypatch.delenv("HR_TEST_TOKEN")  # since the run was made
    send_queued()
    deployment = run.outgoing.get(kind=Outgoing.Kind.DEPLOYMENT)
    assert deployment.state == Outgoing.State.GAVE_UP
    assert deployment.error == (
        "not sent: token_env HR_TEST_TOKEN is not set in hookrunner's environment"
    )
    (queued,) = statuses_of(run)
    assert queued.error.startswith("not sent: the GitHub deployment was not created: not sent:")
    assert github.requests == []


# Retries, waits, giving up.


def test_deployments_and_statuses_are_retried_on_502(github, deploying, pushed):
    github.deployments(502, Answer(201, {"id": 7})).deployment_statuses(502, 201)
    deploying()
    run = pushed()
    send_queued()
    run.refresh_from_db()
    assert run.github_deployment_id == 7
    deployment = run.outgoing.get(kind=Outgoing.Kind.DEPLOYMENT)
    assert [a["outcome"] for a in deployment.attempts] == ["retry", "ok"]
    assert deployment.attempts[0]["status"] == 502
    (queued,) = statuses_of(run)
    assert [a["outcome"] for a in queued.attempts] == ["retry", "ok"]
    assert queued.state == Outgoing.State.SENT
    assert states_sent(github, 7) == ["queued", "queued"]


def test_a_status_waits_for_its_deployment_id(github, deploying, pushed):
    github.deployments(502, Answer(201, {"id": 42}))
    deploying()
    run = pushed()
    deployment = run.outgoing.get(kind=Outgoing.Kind.DEPLOYMENT)
    (queued,) = statuses_of(run)
    assert attempt(queued) is not None  # the deployment was never tried: wait
    assert github.requests == []
    assert attempt(deployment) is not None  # the 502: tried again later
    delay, waited = attempt(queued, 3)
    assert delay > 0 and waited == 4
    assert attempt(deployment) is None
    assert attempt(queued) is None
    assert [r.path for r in github.requests] == [DEPLOYMENTS] * 2 + [f"{DEPLOYMENTS}/42/statuses"]


def test_statuses_give_up_when_their_deployment_did(github, deploying, pushed):
    github.deployments(Answer(422, {"message": "No ref found for: " + SHA}))
    deploying()
    run = pushed()
    send_queued()
    ended(run, "succeeded")
    send_queued()
    deployment = run.outgoing.get(kind=Outgoing.Kind.DEPLOYMENT)
    assert deployment.error == f"HTTP 422: No ref found for: {SHA}"
    queued, _in_progress, success = statuses_of(run)
    assert queued.state == success.state == Outgoing.State.GAVE_UP
    assert success.error == (
        f"not sent: the GitHub deployment was not created: HTTP 422: No ref found for: {SHA}"
    )
    assert [r.path for r in github.requests] == [DEPLOYMENTS]


def test_an_answer_without_an_id_gives_up(github, deploying, pushed):
    github.deployments(Answer(202, {"message": "Auto-merged main into topic"}))
    deploying()
    run = pushed()
    send_queued()
    deployment = run.outgoing.get(kind=Outgoing.Kind.DEPLOYMENT)
    assert deployment.state == Outgoing.State.GAVE_UP
    assert deployment.error.endswith("with no deployment id")
    assert statuses_of(run)[0].state == Outgoing.State.GAVE_UP


# Shown on the run page.


def test_the_run_page_names_the_deployment_and_its_statuses(
    github, deploying, pushed, admin_client
):
    deploying()
    run = pushed()
    lifecycle.claim(run, "box:1")
    send_queued()
    page = admin_client.get(reverse("admin:runner_run_change", args=[run.pk])).content.decode()
    assert f"GitHub deployment to production: hookrunner run {run.pk} of deploy" in page
    assert "deployment status queued: queued" in page
    assert "deployment status in_progress: running" in page
