"""deploy, approve, rollback, lock, unlock and environments, run as commands against a
real repository on disk (pipelines.yaml's clone_url) and the test database."""

import textwrap

import pytest
from django.core.management import CommandError, call_command

from runner.models import Decision, Run
from runner.runs import lifecycle
from tests.rows import Origin

pytestmark = pytest.mark.django_db

PIPELINES = """\
deploy:
  on:
    manual:
      inputs:
        level: {choices: [info, debug], default: info}
        note: {description: why}
  environment: {name: production, url: "https://shop.example"}
  steps: [{name: deploy, run: echo deploying}]
gated:
  on: manual
  environment: staging
  approval: required
  steps: [{name: deploy, run: echo deploying}]
test:
  on: {push: null}
  steps: [{name: test, run: echo testing}]
"""


@pytest.fixture
def origin(tmp_path, settings) -> Origin:
    """acme/shop's repository, named as its clone_url in a pipelines file of its own."""
    settings.MIRRORS_DIR = tmp_path / "mirrors"
    repository = Origin(tmp_path / "origin" / "acme" / "shop")
    path = tmp_path / "config" / "pipelines.yaml"
    path.parent.mkdir()
    path.write_text(
        f"repositories:\n  acme/shop:\n    clone_url: {tmp_path}/origin/{{repository}}\n"
        f"    pipelines:\n{textwrap.indent(PIPELINES, '      ')}"
    )
    settings.PIPELINES_FILE = path
    return repository


def command(capsys, *args, **options) -> str:
    call_command(*args, **options)
    return capsys.readouterr().out


def deploy(capsys, *args, **options) -> tuple[Run, str]:
    """Run the deploy command; the run it started and what it printed."""
    output = command(capsys, "deploy", "acme/shop", *args, by="alice", **options)
    return Run.objects.latest("pk"), output


def succeed(run: Run) -> None:
    assert lifecycle.claim(run, "test-worker")
    assert lifecycle.finish(run, Run.Status.SUCCEEDED, "1 step succeeded")


def test_deploy_a_branch_with_inputs(capsys, origin):
    sha = origin.commit("one\n", "first")
    run, output = deploy(capsys, "deploy", ref="main", input=["level=debug", "note=hotfix"])
    assert (run.pipeline, run.event, run.sha, run.ref) == (
        "deploy",
        "manual",
        sha,
        "refs/heads/main",
    )
    assert (run.environment, run.requested_by, run.status) == ("production", "alice", "queued")
    assert run.inputs == {"level": "debug", "note": "hotfix"}
    assert output == f"deploy of acme/shop: refs/heads/main at {sha}\nqueued run {run.pk}\n"


def test_deploy_a_short_sha_takes_the_inputs_defaults(capsys, origin):
    first = origin.commit("one\n", "first")
    origin.commit("two\n", "second")
    run, output = deploy(capsys, "deploy", sha=first[:8], input=["note=back"])
    assert (run.sha, run.ref, run.inputs) == (first, "", {"level": "info", "note": "back"})
    assert output.endswith(f"queued run {run.pk}\n")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["note=x", "colour=red"], "pipeline deploy has no input colour"),
        ([], "pipeline deploy needs input note"),
        (["note=x", "level=trace"], "input level must be one of info, debug, not 'trace'"),
        (["note"], "--input 'note' is not NAME=VALUE"),
        (["note=a", "note=b"], "--input note is given twice"),
    ],
)
def test_bad_inputs_are_refused(origin, inputs, message):
    origin.commit("one\n", "first")
    with pytest.raises(CommandError, match=message):
        call_command("deploy", "acme/shop", "deploy", ref="main", input=inputs)
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (("test",), {"ref": "main"}, "pipeline test of acme/shop cannot be started by hand"),
        (("nope",), {"ref": "main"}, "acme/shop has no pipeline nope"),
        (("gated",), {"ref": "nope"}, "no branch, tag or commit nope in /"),
        (("gated", "--ref=--upload-pack=x"), {}, "is not a branch, tag or commit name"),
        (("gated",), {"sha": "main"}, "--sha 'main' is not a commit sha"),
        (("gated",), {"sha": "1234567"}, "no branch, tag or commit 1234567 in"),
    ],
)
def test_deploys_that_cannot_start_are_refused(origin, args, options, message):
    origin.commit("one\n", "first")
    with pytest.raises(CommandError, match=message):
        call_command("deploy", "acme/shop", *args, **options)
    assert not Run.objects.exists()


def test_a_repository_pipelines_yaml_does_not_cover_is_refused(origin):
    with pytest.raises(CommandError, match=r"no entry in .* covers acme/other"):
        call_command("deploy", "acme/other", "deploy", ref="main")


def test_approve_a_run_waiting_for_approval(capsys, origin):
    origin.commit("one\n", "first")
    run, output = deploy(capsys, "gated", ref="main")
    assert output.endswith(f"run {run.pk} waiting for approval\n")
    output = command(capsys, "approve", run.pk, by="bob")
    assert output == f"run {run.pk} approved by bob\nqueued run {run.pk}\n"
    decision = Decision.objects.get()
    assert (decision.approved, decision.by) == (True, "bob")


def test_reject_a_run_waiting_for_approval_with_a_reason(capsys, origin):
    origin.commit("one\n", "first")
    run, _ = deploy(capsys, "gated", ref="main")
    output = command(capsys, "approve", run.pk, reject=True, reason="sale today", by="bob")
    assert output == (
        f"run {run.pk} rejected by bob\nrun {run.pk} cancelled: rejected by bob: sale today\n"
    )
    with pytest.raises(
        CommandError, match=f"^run {run.pk} is cancelled, not waiting for approval$"
    ):
        call_command("approve", run.pk)
    with pytest.raises(CommandError, match=r"^no such run: 999$"):
        call_command("approve", 999)


def test_rollback_without_to_deploys_the_one_before_the_live_one(capsys, origin):
    first = origin.commit("one\n", "first")
    old, _ = deploy(capsys, "deploy", ref="main", input=["note=a"])
    succeed(old)
    origin.commit("two\n", "second")
    live, _ = deploy(capsys, "deploy", ref="main", input=["note=b"])
    succeed(live)
    output = command(capsys, "rollback", "acme/shop", "production", reason="broken", by="carol")
    run = Run.objects.latest("pk")
    assert (run.sha, run.rollback_of_id, run.reason, run.requested_by) == (
        first,
        live.pk,
        "broken",
        "carol",
    )
    assert run.inputs == {"level": "info", "note": "a"}
    assert output == (
        f"production of acme/shop back to {first} (rollback of run {live.pk})\n"
        f"queued run {run.pk}\n"
    )


def test_rollback_to_a_sha_that_succeeded(capsys, origin):
    first = origin.commit("one\n", "first")
    for note in ("a", "b"):
        run, _ = deploy(capsys, "deploy", ref="main", input=[f"note={note}"])
        succeed(run)
        origin.commit(f"{note}\n", note)
    command(capsys, "rollback", "acme/shop", "production", to=first[:7])
    assert Run.objects.latest("pk").sha == first


def test_rollback_to_what_never_succeeded_is_refused(capsys, origin):
    origin.commit("one\n", "first")
    live, _ = deploy(capsys, "deploy", ref="main", input=["note=a"])
    unfinished, _ = deploy(capsys, "deploy", sha=origin.commit("two\n", "second"), input=["note=b"])
    succeed(live)
    with pytest.raises(CommandError, match=f"^{unfinished.sha} never succeeded in production"):
        call_command("rollback", "acme/shop", "production", to=unfinished.sha)
    with pytest.raises(CommandError, match="has no earlier successful deployment"):
        call_command("rollback", "acme/shop", "production")
    with pytest.raises(CommandError, match="nothing has been deployed to qa of acme/shop yet"):
        call_command("rollback", "acme/shop", "qa")


def test_a_locked_environments_deploy_waits_until_it_is_unlocked(capsys, origin):
    origin.commit("one\n", "first")
    output = command(capsys, "lock", "acme/shop", "production", reason="freeze", by="bob")
    assert output == "acme/shop production locked by bob: freeze\n"
    output = command(capsys, "lock", "acme/shop", "production", reason="other", by="carol")
    assert output == "acme/shop production already locked by bob: freeze\n"
    run, output = deploy(capsys, "deploy", ref="main", input=["note=x"])
    assert (run.status, run.detail) == ("waiting", "waiting: production is locked by bob: freeze")
    assert output.endswith(f"run {run.pk} waiting: production is locked by bob: freeze\n")
    output = command(capsys, "unlock", "acme/shop", "production")
    assert output == f"acme/shop production unlocked\nqueued run {run.pk}\n"
    with pytest.raises(CommandError, match=r"^acme/shop production is not locked$"):
        call_command("unlock", "acme/shop", "production")


def test_an_environment_no_pipeline_deploys_to_cannot_be_locked(origin):
    with pytest.raises(CommandError, match=r"deploys to prod \(its environments: production, st"):
        call_command("lock", "acme/shop", "prod", reason="typo")


def test_environments_one_line_each(capsys, origin):
    sha = origin.commit("one\n", "first")
    live, _ = deploy(capsys, "deploy", ref="main", input=["note=a"])
    succeed(live)
    waiting, _ = deploy(capsys, "gated", ref="main")
    command(capsys, "lock", "acme/shop", "production", reason="freeze", by="bob")
    lines = command(capsys, "environments").splitlines()
    when = Run.objects.get(pk=live.pk).finished_at.strftime("%Y-%m-%d %H:%M UTC")
    assert lines == [
        f"acme/shop production: live {sha[:12]} (refs/heads/main) run {live.pk} by alice, "
        f"succeeded {when}; locked by bob: freeze; https://shop.example",
        f"acme/shop staging: nothing deployed yet; on its way: run {waiting.pk} waiting for "
        "approval",
    ]
    assert command(capsys, "environments", "acme/other") == "no environments of acme/other yet\n"
