"""Resolving a branch, tag, ref or sha through the mirror, against real repositories."""

import re
from pathlib import Path

import pytest

from runner.execution import refs
from runner.execution.checkout import mirror_locked, mirror_name
from runner.runs.deployments import Commit, DeployRefused
from tests.rows import Origin, git
from tests.worker_processes import running, wait_for


@pytest.fixture
def origin(tmp_path, settings) -> Origin:
    settings.MIRRORS_DIR = tmp_path / "mirrors"
    return Origin(tmp_path / "origin" / "acme" / "webapp")


def url(origin: Origin) -> str:
    return str(origin.path)


def test_a_branch_name_is_its_newest_commit_and_full_ref(origin):
    origin.commit("one\n", "first")
    second = origin.commit("two\n", "second")
    assert refs.resolve(url(origin), "main") == Commit(second, "refs/heads/main")


def test_a_tag_is_peeled_to_its_commit(origin):
    tagged = origin.commit("one\n", "first")
    git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "tag",
        "-a",
        "-m",
        "v1",
        "v1.0",
        cwd=origin.path,
    )
    origin.commit("two\n", "second")
    assert refs.resolve(url(origin), "v1.0") == Commit(tagged, "refs/tags/v1.0")


def test_a_full_ref_as_given(origin):
    sha = origin.commit("one\n", "first")
    git("branch", "release/2", cwd=origin.path)
    assert refs.resolve(url(origin), "refs/heads/release/2") == Commit(sha, "refs/heads/release/2")


def test_a_short_sha_is_the_commit_with_no_ref(origin):
    first = origin.commit("one\n", "first")
    origin.commit("two\n", "second")
    assert refs.resolve(url(origin), first[:7]) == Commit(first)
    assert refs.resolve(url(origin), first.upper()) == Commit(first)


def test_later_look_ups_fetch_what_was_pushed_since(origin, settings):
    origin.commit("one\n", "first")
    refs.resolve(url(origin), "main")
    newer = origin.commit("two\n", "second")
    assert refs.resolve(url(origin), "main").sha == newer
    assert [path.name for path in Path(settings.MIRRORS_DIR).glob("*.git")] == [
        mirror_name(url(origin))
    ]


def test_a_commit_under_no_branch_any_more_is_fetched_by_its_sha(origin):
    origin.commit("kept\n", "first")
    refs.resolve(url(origin), "main")
    dropped = origin.commit("force-pushed away\n", "second")
    git("reset", "-q", "--hard", "HEAD~1", cwd=origin.path)
    git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=origin.path)
    assert refs.resolve(url(origin), dropped) == Commit(dropped)


def test_an_unknown_name_is_refused_saying_where_it_looked(origin):
    origin.commit("one\n", "first")
    with pytest.raises(DeployRefused, match=f"^no branch, tag or commit nope in {url(origin)}$"):
        refs.resolve(url(origin), "nope")
    with pytest.raises(DeployRefused, match="no branch, tag or commit 1234567 in"):
        refs.resolve(url(origin), "1234567")


@pytest.mark.parametrize("wanted", ["--upload-pack=touch /tmp/x", "-", "main~1", "main^{tree}", ""])
def test_what_git_would_read_as_an_option_or_expression_is_refused(origin, wanted, settings):
    with pytest.raises(DeployRefused, match="is not a branch, tag or commit name"):
        refs.resolve(url(origin), wanted)
    assert not Path(settings.MIRRORS_DIR).exists()


def test_a_repository_that_cannot_be_fetched_is_refused_with_gits_words(tmp_path, settings):
    settings.MIRRORS_DIR = tmp_path / "mirrors"
    missing = str(tmp_path / "no-such-repository")
    with pytest.raises(DeployRefused, match=f"^cannot fetch {missing}: .*does not exist"):
        refs.resolve(missing, "main")


def test_without_a_sandbox_nothing_is_looked_up(origin, settings):
    settings.BWRAP = "/nonexistent/bwrap"
    with pytest.raises(
        DeployRefused, match="the sandbox cannot start: bubblewrap is not installed"
    ):
        refs.resolve(url(origin), "main")


def test_a_look_up_that_outlasts_its_time_is_refused_and_its_git_stopped(
    tmp_path, settings, silent_remote
):
    settings.MIRRORS_DIR = tmp_path / "mirrors"
    took_too_long = rf"^git took longer than 2s on {re.escape(silent_remote)}: try again$"
    with pytest.raises(DeployRefused, match=took_too_long):
        refs.resolve(silent_remote, "main", seconds=2)
    wait_for(lambda: not running(silent_remote, whole=False), "git gone", seconds=10)


def test_a_mirror_busy_past_the_time_of_the_look_up_is_refused(origin, settings):
    mirror = Path(settings.MIRRORS_DIR) / mirror_name(url(origin))
    with (
        mirror_locked(mirror, lambda: None),
        pytest.raises(DeployRefused, match=f"^the mirror of {url(origin)} stayed busy; try again$"),
    ):
        refs.resolve(url(origin), "main", seconds=1)
