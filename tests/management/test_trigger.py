import pytest
from django.core.management import CommandError, call_command

from runner.config.github import event_from_payload
from runner.config.matching import is_from_fork
from runner.management.commands.trigger import pull_request_payload, push_payload
from runner.models import Delivery, Run

pytestmark = pytest.mark.django_db

SHA = "fdf0d9b48aca90fb0019f29d9611992528323408"


def trigger(capsys, *args, **options) -> str:
    call_command("trigger", *args, **options)
    return capsys.readouterr().out


def test_a_push_to_a_branch_starts_the_matching_pipelines_and_stores_the_delivery(capsys):
    output = trigger(capsys, "acme/webapp", "push", ref="main", sha=SHA, actor="octocat")
    runs = list(Run.objects.order_by("pk"))
    assert [run.pipeline for run in runs] == ["test", "deploy"]
    assert {(run.ref, run.sha, run.event) for run in runs} == {("refs/heads/main", SHA, "push")}
    delivery = Delivery.objects.get()
    assert delivery.delivery_id.startswith("local-")
    assert (delivery.event, delivery.hook_id, delivery.status) == ("push", "local", "accepted")
    assert (delivery.repository, delivery.sender, delivery.ref) == (
        "acme/webapp",
        "octocat",
        "refs/heads/main",
    )
    assert delivery.payload["repository"]["clone_url"] == "https://github.com/acme/webapp.git"
    assert f"push to acme/webapp refs/heads/main at {SHA[:12]}, via acme/webapp:" in output
    assert "  test: starts\n  deploy: starts\n" in output
    assert f"delivery {delivery.delivery_id} accepted: started 2 runs: test, deploy" in output
    assert output.endswith(f"queued runs {runs[0].pk}, {runs[1].pk}\n")


def test_a_push_that_starts_nothing_is_stored_as_ignored_saying_why(capsys):
    output = trigger(capsys, "acme/webapp", "push", ref="refs/heads/gh-pages", sha=SHA)
    assert "test: does not start: branch gh-pages matches branches_ignore" in output
    assert output.endswith("nothing queued\n")
    assert Delivery.objects.get().status == "ignored"
    assert not Run.objects.exists()


def test_a_tag(capsys, pipelines):
    pipelines("""
        release:
          on:
            push:
              tags: v*
          steps:
            - {name: release, run: make release}
        test:
          on:
            push:
              branches: main
          steps:
            - {name: test, run: make test}
    """)
    output = trigger(capsys, "acme/webapp", "push", ref="refs/tags/v1.2.0", sha=SHA)
    (run,) = Run.objects.all()
    assert (run.pipeline, run.ref) == ("release", "refs/tags/v1.2.0")
    assert "test: does not start: tag v1.2.0: the push trigger lists only branches" in output


def test_a_pull_request(capsys):
    output = trigger(
        capsys, "acme/webapp", "pull_request", head="feature", sha=SHA, number=7, actor="octocat"
    )
    (run,) = Run.objects.all()
    assert (run.pipeline, run.pr_number, run.ref, run.sha, run.from_fork) == (
        "test",
        7,
        "refs/pull/7/merge",
        SHA,
        False,
    )
    delivery = Delivery.objects.get()
    assert (delivery.event, delivery.action) == ("pull_request", "opened")
    assert delivery.payload["pull_request"]["base"]["ref"] == "main"
    assert "pull_request #7 opened to acme/webapp refs/pull/7/merge" in output
    assert "deploy: does not start: no pull_request trigger" in output


def test_a_pull_request_from_a_fork_is_refused_unless_the_pipeline_allows_forks(capsys):
    output = trigger(
        capsys, "acme/webapp", "pull_request", head="patch-1", fork="mallory/webapp", dry_run=True
    )
    assert "pull_request #1 opened from the fork mallory/webapp" in output
    assert "test: does not start: the pull request comes from mallory/webapp" in output


def test_a_pull_request_action_the_pipeline_does_not_list(capsys):
    output = trigger(capsys, "acme/webapp", "pull_request", head="x", action="closed", dry_run=True)
    assert "test: does not start: action closed is not in types" in output


def test_dry_run_stores_nothing(capsys):
    output = trigger(capsys, "acme/webapp", "push", ref="main", dry_run=True)
    assert "  test: starts\n  deploy: starts\n" in output
    assert output.endswith("dry run: nothing stored, nothing queued\n")
    assert not Delivery.objects.exists()
    assert not Run.objects.exists()


def test_an_unknown_event_is_refused():
    with pytest.raises(CommandError, match="unknown event 'issues': trigger builds push and"):
        call_command("trigger", "acme/webapp", "issues", sha=SHA)
    assert not Delivery.objects.exists()


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (("acme", "push"), {"ref": "main", "sha": SHA}, "'acme' is not OWNER/REPO"),
        (("acme/webapp", "push"), {"sha": SHA}, "a push needs --ref"),
        (("acme/webapp", "push"), {"ref": "main"}, "--sha is required to queue runs"),
        (("acme/webapp", "push"), {"ref": "main", "sha": "abc"}, "'abc' is not a commit id"),
        (
            ("acme/webapp", "push"),
            {"ref": "main", "sha": SHA, "head": "x"},
            "not for push events: --head",
        ),
        (("acme/webapp", "pull_request"), {"sha": SHA}, "a pull_request needs --head"),
        (
            ("acme/webapp", "pull_request"),
            {"head": "x", "ref": "main"},
            "not for pull_request events: --ref",
        ),
        (("acme/webapp", "pull_request"), {"head": "x", "fork": "m"}, "'m' is not OWNER/REPO"),
    ],
)
def test_options_that_do_not_fit_are_refused(args, options, message):
    with pytest.raises(CommandError, match=message):
        call_command("trigger", *args, **options)
    assert not Delivery.objects.exists()


def test_an_invalid_pipelines_file_gives_its_problems(tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_text("repositories:\n  acme/webapp:\n    pipelines:\n      test:\n        on: {}\n")
    with pytest.raises(CommandError) as raised:
        call_command("trigger", "acme/webapp", "push", ref="main", sha=SHA, pipelines=str(path))
    message = str(raised.value)
    assert message.startswith(f"{path} is not valid:\n")
    assert "steps" in message
    assert not Delivery.objects.exists()


def test_a_repository_no_entry_covers(capsys):
    output = trigger(capsys, "acme/other", "push", ref="main", dry_run=True)
    assert output.startswith("no entry in ")
    assert output.endswith("covers acme/other\ndry run: nothing stored, nothing queued\n")


def test_path_filters_are_tried_with_the_changed_files(capsys, pipelines):
    pipelines("""
        docs:
          on:
            push:
              paths: ["docs/**"]
          steps:
            - {name: build, run: make docs}
        test:
          on:
            push:
              paths_ignore: ["docs/**"]
          steps:
            - {name: test, run: make test}
    """)
    output = trigger(capsys, "acme/webapp", "push", ref="main", changed=["docs/a.md"], dry_run=True)
    assert "  docs: starts\n" in output
    assert "  test: does not start: paths: the one changed file, docs/a.md, matches" in output
    output = trigger(capsys, "acme/webapp", "push", ref="main", dry_run=True)
    assert "  docs: starts (paths: the push lists no commits, so it runs)\n" in output
    assert output.endswith(
        "(path filters can be tried with --changed FILE ...)\n"
        "dry run: nothing stored, nothing queued\n"
    )


def test_changed_files_are_listed_as_a_commit_of_the_push():
    payload = push_payload(
        "acme/webapp", "main", SHA, "0" * 40, "octocat", changed=["docs/a.md", "src/b.py"]
    )
    (commit,) = payload["commits"]
    assert commit["modified"] == ["docs/a.md", "src/b.py"]
    assert payload["head_commit"] == commit
    assert payload["created"] is True
    tag = push_payload("acme/webapp", "refs/tags/v1", SHA, "0" * 40, "octocat", changed=["a"])
    assert tag["commits"] == []


def test_built_payloads_read_as_github_ones():
    push = event_from_payload("push", push_payload("acme/webapp", "dev", SHA, SHA, "me", None))
    assert (push.repository, push.ref, push.sha, push.sender) == (
        "acme/webapp",
        "refs/heads/dev",
        SHA,
        "me",
    )
    fork = event_from_payload(
        "pull_request",
        pull_request_payload("acme/webapp", "synchronize", SHA, "main", "p", 3, "m/webapp", "m"),
    )
    assert (fork.pr_number, fork.head_ref, fork.base_ref, fork.action) == (
        3,
        "p",
        "main",
        "synchronize",
    )
    assert fork.head_repository == "m/webapp"
    assert is_from_fork(fork)


@pytest.fixture
def needing_a_secret(tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_text(
        "repositories:\n  acme/webapp:\n    pipelines:\n"
        "      deploy: {on: push, secrets: [HR_UNSET_DEPLOY_KEY], steps: [{name: d, run: d}]}\n"
    )
    return path


def test_a_dry_run_warns_of_an_unset_secret_variable_and_matches_all_the_same(
    needing_a_secret, capsys
):
    call_command(
        "trigger", "acme/webapp", "push", ref="main", dry_run=True, pipelines=str(needing_a_secret)
    )
    captured = capsys.readouterr()
    assert captured.err == (
        f"warning: {needing_a_secret}:4: repositories.acme/webapp.pipelines.deploy.secrets: "
        "names HR_UNSET_DEPLOY_KEY, which is not set in hookrunner's environment\n"
    )
    assert "  deploy: starts\n" in captured.out


def test_queuing_runs_refuses_an_unset_secret_variable(needing_a_secret):
    with pytest.raises(CommandError, match="names HR_UNSET_DEPLOY_KEY, which is not set"):
        call_command(
            "trigger", "acme/webapp", "push", ref="main", sha=SHA, pipelines=str(needing_a_secret)
        )
    assert not Delivery.objects.exists()


def test_an_organisation_entry_adds_its_pipelines_to_what_a_delivery_starts(capsys, tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_text(
        "repositories:\n"
        "  acme/*:\n    pipelines:\n      lint: {on: push, steps: [{name: l, run: l}]}\n"
        "  acme/webapp:\n    pipelines:\n      test: {on: push, steps: [{name: t, run: t}]}\n"
    )
    output = trigger(capsys, "acme/webapp", "push", ref="main", sha=SHA, pipelines=str(path))
    assert f"at {SHA[:12]}, via acme/*, acme/webapp:\n  lint: starts\n  test: starts\n" in output
    assert [run.pipeline for run in Run.objects.order_by("pk")] == ["lint", "test"]
