"""Deployments as the run lifecycle sees them: approval before the first step, a deploy
freeze, manual runs with inputs, rollbacks, and what is live where."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone

from runner.config.store import pipelines_store
from runner.models import Decision, Run
from runner.runs import lifecycle
from runner.runs.deployments import (
    Commit,
    DeployRefused,
    decide,
    deploy_again,
    environments,
    manual_pipeline,
    may_approve,
    rollback,
    start,
)
from tests.conftest import SignedDelivery, executed

pytestmark = pytest.mark.django_db

SHA_1, SHA_2, SHA_3 = "1" * 40, "2" * 40, "3" * 40

DEPLOY = """\
    test:
      on: {{push: null}}
      steps: [{{name: test, run: "true"}}]
    deploy:
      on: [push, manual]
      environment: {{name: production, url: https://shop.example.com}}
      {extra}
      steps: [{{name: deploy, run: "true"}}]
    """


@pytest.fixture
def deploying(pipelines):
    """pipelines.yaml with a test and a deploy pipeline; `extra` adds lines to deploy."""

    def write(*extra: str) -> None:
        pipelines(DEPLOY.format(extra="\n      ".join(extra)))

    return write


@pytest.fixture
def pushed(post_delivery):
    def push() -> dict[str, Run]:
        ids = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
        return {run.pipeline: run for run in Run.objects.filter(pk__in=ids)}

    return push


def newest():
    """pipelines.yaml as a test just wrote it (the store loads a change in the background)."""
    return pipelines_store().newest()


def fresh(run: Run) -> Run:
    run.refresh_from_db()
    return run


def deploy_pipeline():
    return manual_pipeline(newest(), "acme/webapp", "deploy")


def started(sha: str, by: str = "alice", **inputs: str) -> Run:
    return start(deploy_pipeline(), "acme/webapp", Commit(sha, "refs/heads/main"), inputs, by)


def deployed(sha: str) -> Run:
    """A manual deploy of `sha` that succeeded."""
    return executed(started(sha).pk)


def test_a_run_needing_approval_waits_without_a_task_until_a_person_approves(deploying, pushed):
    deploying("approval: required")
    deploy = pushed()["deploy"]
    assert (deploy.status, deploy.waiting_for, deploy.detail) == (
        "waiting", "approval", "waiting for approval",
    )  # fmt: skip
    assert deploy.task_id is None
    assert deploy.approval_expires_at > timezone.now() + timedelta(hours=23)
    decide(deploy, True, "alice", "looks good")
    assert fresh(deploy).status == "queued"
    assert executed(deploy.pk).status == "succeeded"
    decision = Decision.objects.get(run=deploy)
    assert (decision.approved, decision.by, decision.reason) == (True, "alice", "looks good")


def test_approval_comes_after_what_the_run_needs(deploying, pushed):
    deploying("needs: test", "approval: required")
    runs = pushed()
    assert fresh(runs["deploy"]).waiting_for == "needs"
    executed(runs["test"].pk)
    assert (fresh(runs["deploy"]).waiting_for, runs["deploy"].detail) == (
        "approval", "waiting for approval",
    )  # fmt: skip


def test_a_rejected_run_ends_cancelled_saying_who_and_why_and_cannot_be_approved_after(
    deploying, pushed
):
    deploying("approval: required")
    deploy = pushed()["deploy"]
    decide(deploy, False, "bob", "not on a Friday")
    deploy = fresh(deploy)
    assert (deploy.status, deploy.detail) == ("cancelled", "rejected by bob: not on a Friday")
    with pytest.raises(DeployRefused, match="not waiting for approval"):
        decide(deploy, True, "alice")
    assert [d.approved for d in Decision.objects.filter(run=deploy)] == [False]


def test_a_run_waiting_for_approval_past_its_expiry_is_skipped(deploying, pushed):
    deploying("approval: required", "expires: 1h")
    deploy = pushed()["deploy"]
    assert lifecycle.expire_approvals() == []
    Run.objects.filter(pk=deploy.pk).update(approval_expires_at=timezone.now())
    assert lifecycle.expire_approvals() == [deploy.pk]
    assert (fresh(deploy).status, deploy.detail) == ("skipped", "skipped: approval expired")


def test_a_re_run_of_a_run_needing_approval_needs_it_again(deploying, pushed):
    deploying("approval: required")
    deploy = pushed()["deploy"]
    decide(deploy, True, "alice")
    again = lifecycle.rerun(executed(deploy.pk), by="carol")
    assert (again.status, again.waiting_for, again.environment) == (
        "waiting", "approval", "production",
    )  # fmt: skip


def test_runs_of_a_locked_environment_wait_until_it_is_unlocked(deploying, pushed):
    deploying()
    lifecycle.lock("acme/webapp", "production", "bob", "release freeze")
    runs = pushed()
    assert fresh(runs["test"]).status == "queued"
    deploy = fresh(runs["deploy"])
    assert (deploy.status, deploy.detail) == (
        "waiting", "waiting: production is locked by bob: release freeze",
    )  # fmt: skip
    assert lifecycle.unlock("acme/webapp", "production") == [deploy.pk]
    assert fresh(deploy).status == "queued"
    assert lifecycle.unlock("acme/webapp", "production") is None


def test_a_queued_run_whose_environment_is_locked_waits_instead_of_starting(deploying, pushed):
    deploying()
    deploy = pushed()["deploy"]
    lifecycle.lock("acme/webapp", "production", "bob", "incident")
    assert executed(deploy.pk).status == "waiting"
    assert deploy.steps.count() == 0
    lifecycle.unlock("acme/webapp", "production")
    assert executed(deploy.pk).status == "succeeded"


def test_an_approved_run_of_a_locked_environment_waits_for_the_unlocking(deploying, pushed):
    deploying("approval: required")
    lifecycle.lock("acme/webapp", "production", "bob", "freeze")
    deploy = pushed()["deploy"]
    assert fresh(deploy).waiting_for == "approval"
    decide(deploy, True, "alice")
    assert fresh(deploy).waiting_for == "lock"
    lifecycle.unlock("acme/webapp", "production")
    assert fresh(deploy).status == "queued"


def test_unlocking_gives_a_concurrency_group_its_turns_in_order(deploying):
    deploying("concurrency: production")
    lifecycle.lock("acme/webapp", "production", "bob", "freeze")
    first, second = started(SHA_1), started(SHA_2)
    assert lifecycle.unlock("acme/webapp", "production") == [first.pk, second.pk]
    assert (fresh(first).status, fresh(second).status) == ("queued", "waiting")
    assert fresh(second).waiting_for == "turn"


def test_a_manual_run_is_started_at_a_commit_with_its_inputs(pipelines):
    pipelines("""\
        deploy:
          on:
            manual:
              inputs:
                level: {default: info, choices: [info, debug]}
                ticket: null
          environment: production
          steps: [{name: deploy, run: "true"}]
        """)
    run = started(SHA_1, by="alice", ticket="OPS-1")
    assert (run.event, run.sha, run.ref, run.requested_by) == (
        "manual", SHA_1, "refs/heads/main", "alice",
    )  # fmt: skip
    assert run.inputs == {"level": "info", "ticket": "OPS-1"}
    assert run.delivery.event == "manual" and run.delivery.delivery_id.startswith("manual-")
    with pytest.raises(DeployRefused, match="needs input ticket"):
        started(SHA_1)
    with pytest.raises(DeployRefused, match="has no input colour"):
        started(SHA_1, ticket="x", colour="red")
    with pytest.raises(DeployRefused, match="must be one of info, debug"):
        started(SHA_1, ticket="x", level="loud")


def test_only_a_pipeline_with_on_manual_is_started_by_hand(deploying):
    deploying()
    with pytest.raises(DeployRefused, match="cannot be started by hand: add manual"):
        manual_pipeline(newest(), "acme/webapp", "test")
    with pytest.raises(DeployRefused, match="has no pipeline lint"):
        manual_pipeline(newest(), "acme/webapp", "lint")
    with pytest.raises(DeployRefused, match="covers acme/other"):
        manual_pipeline(newest(), "acme/other", "deploy")


def test_rollback_deploys_the_last_good_commit_before_the_live_one_again(deploying):
    deploying()
    first, live = deployed(SHA_1), deployed(SHA_2)
    deploying("needs: test")
    assert Run.objects.live("acme/webapp", "production") == live
    back = rollback(newest(), "acme/webapp", "production", "", "carol", "broke login")
    # The commit was good once: the rollback does not wait for test again.
    assert (back.status, back.sha, back.rollback_of, back.reason, back.requested_by) == (
        "queued", first.sha, live, "broke login", "carol",
    )  # fmt: skip
    assert executed(back.pk).status == "succeeded"
    assert Run.objects.live("acme/webapp", "production") == fresh(back)


def test_rollback_to_a_sha_waits_for_approval_where_the_pipeline_needs_it(deploying):
    deploying()
    deployed(SHA_1)
    deployed(SHA_2)
    deploying("approval: required")
    back = rollback(newest(), "acme/webapp", "production", SHA_1[:7], "carol")
    assert (back.sha, back.waiting_for) == (SHA_1, "approval")


def test_a_rollback_needs_an_earlier_success(deploying):
    deploying()
    config = newest()
    with pytest.raises(DeployRefused, match="nothing has been deployed to production"):
        rollback(config, "acme/webapp", "production", "", "carol")
    deployed(SHA_1)
    with pytest.raises(DeployRefused, match="no earlier successful deployment"):
        rollback(config, "acme/webapp", "production", "", "carol")
    with pytest.raises(DeployRefused, match=f"{SHA_3[:7]} never succeeded in production"):
        rollback(config, "acme/webapp", "production", SHA_3[:7], "carol")
    failed = started(SHA_3)
    lifecycle.claim(failed, "box:1")
    lifecycle.finish(failed, "failed", "step deploy failed with exit code 1")
    with pytest.raises(DeployRefused, match="is not a successful deployment"):
        deploy_again(config, fresh(failed), "carol")


def test_environments_say_what_is_live_what_is_on_its_way_and_the_lock(deploying):
    deploying("approval: required")
    live = started(SHA_1)
    decide(live, True, "alice")
    executed(live.pk)
    waiting = started(SHA_2)
    lifecycle.lock("acme/webapp", "staging", "bob", "no staging today")
    production, staging = environments("acme/webapp")
    assert (production.environment, production.live, production.in_progress) == (
        "production", fresh(live), waiting,
    )  # fmt: skip
    assert production.url == "https://shop.example.com" and production.lock is None
    assert (staging.environment, staging.live, staging.lock.words) == (
        "staging", None, "staging is locked by bob: no staging today",
    )  # fmt: skip
    assert environments("acme/other") == []


def test_who_may_approve_a_run(deploying, pushed):
    deploying("approval: required")
    anyone = pushed()["deploy"]
    deploying("approval: required", "approvers: deployers")
    grouped = started(SHA_1)
    with_permission = User.objects.create_user("perm")
    with_permission.user_permissions.add(Permission.objects.get(codename="approve_run"))
    member = User.objects.create_user("member")
    member.groups.add(Group.objects.create(name="deployers"))
    boss = User.objects.create_superuser("boss")
    nobody = User.objects.create_user("nobody")
    assert [may_approve(user, anyone) for user in (with_permission, member, boss, nobody)] == [
        True, False, True, False,
    ]  # fmt: skip
    assert [may_approve(user, grouped) for user in (with_permission, member, boss, nobody)] == [
        False, True, True, False,
    ]  # fmt: skip


def test_github_shows_a_run_waiting_for_approval_then_for_the_lock(pipelines, pushed, monkeypatch):
    monkeypatch.setenv("HR_DEPLOY_TOKEN", "t")
    path = pipelines(DEPLOY.format(extra="approval: required"))
    text = path.read_text().replace(
        "  acme/webapp:\n", "  acme/webapp:\n    token_env: HR_DEPLOY_TOKEN\n"
    )
    path.write_text(text.replace("pipelines:\n", "report_status: true\n    pipelines:\n", 1))
    lifecycle.lock("acme/webapp", "production", "bob", "freeze")
    deploy = pushed()["deploy"]
    decide(deploy, True, "alice")
    statuses = deploy.outgoing.filter(kind="commit_status").order_by("pk")
    descriptions = [status.body["description"] for status in statuses]
    assert descriptions == ["waiting for approval", "waiting: production is locked by bob: freeze"]


def test_a_rollback_takes_the_inputs_the_pipeline_has_now(pipelines):
    manual = """\
        deploy:
          on: {{manual: {{inputs: {inputs}}}}}
          environment: production
          steps: [{{name: deploy, run: "true"}}]
        """
    pipelines(manual.format(inputs="{level: {default: info}, old: {default: x}}"))
    executed(started(SHA_1, level="debug").pk)
    deployed(SHA_2)
    pipelines(manual.format(inputs="{level: {default: info}, added: {default: new}}"))
    back = rollback(newest(), "acme/webapp", "production", SHA_1, "carol")
    assert back.inputs == {"level": "debug", "added": "new"}
    pipelines(manual.format(inputs="{level: {default: info}, ticket: null}"))
    with pytest.raises(DeployRefused, match="needs input ticket"):
        rollback(newest(), "acme/webapp", "production", SHA_1, "carol")


def test_a_rollback_to_a_sha_prefix_naming_two_deployed_commits_is_refused(deploying):
    deploying()
    deployed("abc1" + "1" * 36)
    deployed("abc2" + "2" * 36)
    deployed(SHA_3)
    with pytest.raises(DeployRefused, match="abc names several commits deployed to production"):
        rollback(newest(), "acme/webapp", "production", "abc", "carol")


def test_a_manual_run_clones_from_where_the_repositorys_deliveries_said(deploying, pushed):
    deploying()
    assert started(SHA_1).delivery.payload["repository"]["clone_url"] == (
        "https://github.com/acme/webapp.git"
    )
    delivery = pushed()["test"].delivery
    delivery.payload["repository"]["clone_url"] = "file:///srv/git/webapp.git"
    delivery.save()
    assert started(SHA_2).delivery.payload["repository"]["clone_url"] == (
        "file:///srv/git/webapp.git"
    )
