"""checkout: true, against real git repositories on disk, executed by the worker."""

import json
from pathlib import Path

import pytest

from runner.execution.checkout import mirror_name
from tests.conftest import SignedDelivery, alive, executed, output_of
from tests.rows import Origin, git
from tests.worker_processes import processes_running

pytestmark = pytest.mark.django_db


@pytest.fixture
def origin(tmp_path) -> Origin:
    return Origin(tmp_path / "origin" / "acme" / "webapp")


@pytest.fixture
def mirrors(settings, tmp_path) -> Path:
    settings.MIRRORS_DIR = tmp_path / "mirrors"
    return settings.MIRRORS_DIR


@pytest.fixture
def push_commit(post_delivery, mirrors):
    """Deliver a push of `sha` (from `clone_url`, as the payload says) and execute its run."""

    def deliver(sha: str, clone_url: str = "https://github.com/acme/webapp.git"):
        payload = json.loads(SignedDelivery.of_fixture("push__branch").body)
        payload["after"] = sha
        payload["repository"]["clone_url"] = clone_url
        delivery = SignedDelivery(event="push", body=json.dumps(payload).encode(), delivery_id=sha)
        (run_id,) = post_delivery(delivery).json()["runs"]
        return executed(run_id)

    return deliver


READ_README = """\
    ci:
      on: {push: null}
      checkout: true
      steps: [{name: read, run: cat README}]
    """


def test_checkout_clones_the_pushed_commit_from_the_payloads_clone_url(
    pipelines, push_commit, origin
):
    sha = origin.commit("hello from the pushed commit\n", "first")
    pipelines(READ_README)
    run = push_commit(sha, clone_url=str(origin.path))
    assert run.status == "succeeded", run.detail
    checkout, read = run.steps.all()
    assert f"checked out {sha} first" in output_of(checkout)
    assert output_of(read) == "hello from the pushed commit\n"


def test_clone_url_in_pipelines_yaml_overrides_the_payloads(
    pipelines, push_commit, origin, settings, tmp_path
):
    sha = origin.commit("from the override\n", "first")
    pipelines(READ_README)
    text = settings.PIPELINES_FILE.read_text().replace(
        "    pipelines:", f"    clone_url: {tmp_path}/origin/{{repository}}\n    pipelines:"
    )
    settings.PIPELINES_FILE.write_text(text)
    run = push_commit(sha, clone_url="https://github.invalid/nowhere.git")
    assert run.status == "succeeded", run.detail
    assert output_of(run.steps.last()) == "from the override\n"


def test_later_runs_fetch_into_the_repositorys_mirror(pipelines, push_commit, origin, mirrors):
    pipelines(READ_README)
    first = push_commit(origin.commit("one\n", "first"), clone_url=str(origin.path))
    second = push_commit(origin.commit("two\n", "second"), clone_url=str(origin.path))
    assert "cloning a mirror" in output_of(first.steps.first())
    assert "fetching into the mirror" in output_of(second.steps.first())
    assert output_of(second.steps.last()) == "two\n"
    assert [path.name for path in mirrors.iterdir() if path.suffix == ".git"] == [
        mirror_name(str(origin.path))
    ]


def test_commit_under_no_branch_any_more_is_fetched_by_its_sha(pipelines, push_commit, origin):
    pipelines(READ_README)
    push_commit(origin.commit("kept\n", "first"), clone_url=str(origin.path))
    dropped = origin.commit("force-pushed away\n", "second")
    git("reset", "-q", "--hard", "HEAD~1", cwd=origin.path)
    git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=origin.path)
    run = push_commit(dropped, clone_url=str(origin.path))
    assert run.status == "succeeded", run.detail
    assert output_of(run.steps.last()) == "force-pushed away\n"


def test_workspace_is_removed_after_the_run(pipelines, push_commit, origin, settings):
    pipelines(READ_README)
    run = push_commit(origin.commit("x\n", "first"), clone_url=str(origin.path))
    assert run.status == "succeeded"
    assert run.kept_workspace == ""
    assert not (settings.WORKSPACES_DIR / f"run-{run.pk}").exists()


def test_keep_workspace_keeps_it_and_the_run_says_where(pipelines, push_commit, origin):
    pipelines(READ_README.replace("checkout: true", "checkout: true\n      keep_workspace: true"))
    run = push_commit(origin.commit("kept\n", "first"), clone_url=str(origin.path))
    assert run.status == "succeeded"
    assert (Path(run.kept_workspace) / "README").read_text() == "kept\n"


def test_checkout_from_a_missing_repository_is_an_error_with_gits_words(
    pipelines, push_commit, tmp_path
):
    pipelines(READ_README)
    run = push_commit("0" * 40, clone_url=str(tmp_path / "no-such-repository"))
    assert (run.status, run.detail) == ("error", "checkout failed: git exited with 128")
    checkout, read = run.steps.all()
    assert (checkout.status, read.status) == ("failed", "skipped")
    assert "no-such-repository' does not exist" in output_of(checkout)


def test_checkout_that_hangs_is_stopped_with_its_whole_process_group(
    pipelines, push_commit, settings, tmp_path
):
    settings.STEP_KILL_GRACE_SECONDS = 1
    pid_file = tmp_path / "ssh.pid"
    # git runs GIT_SSH_COMMAND through a shell; this "ssh" never answers. Unsandboxed, so
    # that its pid is the host's.
    pipelines(f"""\
        ci:
          on: {{push: null}}
          checkout: true
          timeout: 2s
          sandbox: off
          env: {{GIT_SSH_COMMAND: 'echo $$ > {pid_file}; exec sleep 300 #'}}
          steps: [{{name: read, run: cat README}}]
        """)
    run = push_commit("0" * 40, clone_url="ssh://git@example.invalid/acme/webapp.git")
    assert (run.status, run.detail) == (
        "timed_out",
        "pipeline timed out after 2s, in step checkout",
    )
    assert run.steps.first().status == "timed_out"
    assert not alive(int(pid_file.read_text()))


def test_sandboxed_checkout_that_hangs_leaves_nothing_running(pipelines, push_commit, settings):
    settings.STEP_KILL_GRACE_SECONDS = 1
    pipelines("""\
        ci:
          on: {push: null}
          checkout: true
          timeout: 2s
          env: {GIT_SSH_COMMAND: 'exec sleep 300.617 #'}
          steps: [{name: read, run: cat README}]
        """)
    run = push_commit("0" * 40, clone_url="ssh://git@example.invalid/acme/webapp.git")
    assert (run.status, run.detail) == (
        "timed_out",
        "pipeline timed out after 2s, in step checkout",
    )
    assert processes_running("sleep 300.617") == []
