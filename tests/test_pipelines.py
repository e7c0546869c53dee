"""Which pipelines a delivery starts: plain functions, table-driven."""

import dataclasses
import textwrap

import pytest

from runner.github import parse_event
from runner.pipelines import is_from_fork, match
from runner.pipelines_file import parse_pipelines
from tests.conftest import FIXTURES

HEADERS = {"X-GitHub-Delivery": "d-1", "Content-Type": "application/json"}


def event_of(fixture: str, **changes):
    body = (FIXTURES / f"{fixture}.json").read_bytes()
    event = parse_event({**HEADERS, "X-GitHub-Event": fixture.split("__")[0]}, body)
    return dataclasses.replace(event, **changes)


def config_with(on: str, extra: str = "", repository: str = "acme/webapp"):
    extra = f", {extra}" if extra else ""
    text = f"""\
        repositories:
          {repository}:
            pipelines:
              ci: {{on: {on}, steps: [{{name: s, run: echo}}]{extra}}}
        """
    return parse_pipelines(textwrap.dedent(text), "pipelines.yaml", {"TOKEN": "x"})


def verdict(on: str, event, extra: str = ""):
    (only,) = match(config_with(on, extra), event)
    return only


def push_to(ref: str, **changes):
    return event_of("push__branch", ref=ref, **changes)


@pytest.mark.parametrize(
    ("on", "ref", "starts"),
    [
        ("{push: null}", "refs/heads/anything/at/all", True),
        ("{push: null}", "refs/tags/v1", True),
        ("{push: {branches: main}}", "refs/heads/main", True),
        ("{push: {branches: main}}", "refs/heads/main-2", False),
        ("{push: {branches: 'release/*'}}", "refs/heads/release/1", True),
        ("{push: {branches: 'release/*'}}", "refs/heads/release/1/2", False),
        ("{push: {branches: 'release/**'}}", "refs/heads/release/1/2", True),
        ("{push: {branches: '**'}}", "refs/tags/v1", False),
        ("{push: {tags: 'v*'}}", "refs/tags/v1.2.0", True),
        ("{push: {tags: 'v*'}}", "refs/heads/v1", False),
        ("{push: {tags: 'v*'}}", "refs/tags/release-1", False),
        ("{push: {branches: main, tags: 'v*'}}", "refs/tags/v2", True),
        ("{push: {branches_ignore: 'wip/**'}}", "refs/heads/wip/x/y", False),
        ("{push: {branches_ignore: 'wip/**'}}", "refs/heads/main", True),
        ("{push: {branches_ignore: 'wip/**'}}", "refs/tags/v1", False),
        ("{push: {tags_ignore: 'nightly-*'}}", "refs/tags/nightly-5", False),
        ("{push: {tags_ignore: 'nightly-*'}}", "refs/tags/v5", True),
        ("{push: {branches: ['**', '!dependabot/**']}}", "refs/heads/dependabot/npm/x", False),
        ("{push: {branches: ['**', '!dependabot/**']}}", "refs/heads/fix", True),
        ("{push: null}", "refs/notes/commits", False),
        ("{pull_request: null}", "refs/heads/main", False),
    ],
)
def test_push_triggers(on, ref, starts):
    assert verdict(on, push_to(ref)).starts is starts


@pytest.mark.parametrize(
    ("on", "ref", "reason"),
    [
        (
            "{push: {branches: main}}",
            "refs/heads/dev",
            "branch dev matches none of branches (main)",
        ),
        (
            "{push: {branches_ignore: 'wip/*'}}",
            "refs/heads/wip/a",
            "branch wip/a matches branches_ignore",
        ),
        (
            "{push: {tags: 'v*'}}",
            "refs/heads/main",
            "branch main: the push trigger lists only tags",
        ),
        (
            "{push: {branches: main}}",
            "refs/tags/v1",
            "tag v1: the push trigger lists only branches",
        ),
        ("{push: {tags: 'v*'}}", "refs/tags/x1", "tag x1 matches none of tags (v*)"),
        ("{pull_request: null}", "refs/heads/main", "no push trigger"),
    ],
)
def test_push_refusal_names_the_trigger_that_said_no(on, ref, reason):
    assert verdict(on, push_to(ref)).reason == reason


def test_branch_deletion_starts_nothing_by_default():
    deletion = event_of("push__branch_deleted")
    result = verdict("{push: null}", deletion)
    assert not result.starts
    assert "deletes a branch or tag" in result.reason


def test_branch_deletion_starts_a_pipeline_that_asks_for_it():
    assert verdict("{push: {deletions: true}}", event_of("push__branch_deleted")).starts


@pytest.mark.parametrize(
    ("on", "fixture", "starts"),
    [
        ("{pull_request: null}", "pull_request__opened", True),
        ("{pull_request: null}", "pull_request__synchronize", True),
        ("{pull_request: null}", "pull_request__closed", False),
        ("{pull_request: {types: closed}}", "pull_request__closed", True),
        ("{pull_request: {branches: main}}", "pull_request__opened", True),
        ("{pull_request: {branches: 'release/*'}}", "pull_request__opened", False),
        ("{pull_request: {branches_ignore: main}}", "pull_request__opened", False),
        ("{push: null}", "pull_request__opened", False),
    ],
)
def test_pull_request_triggers(on, fixture, starts):
    assert verdict(on, event_of(fixture)).starts is starts


def test_pull_request_action_outside_types_is_named():
    result = verdict("{pull_request: null}", event_of("pull_request__closed"))
    assert result.reason == "action closed is not in types (opened, reopened, synchronize)"


def test_pull_request_from_a_fork_starts_nothing_by_default():
    fork = event_of("pull_request__from_fork")
    assert is_from_fork(fork)
    result = verdict("{pull_request: null}", fork)
    assert not result.starts
    assert "comes from mallory/webapp" in result.reason


def test_pull_request_from_a_fork_runs_without_secrets_when_forks_are_allowed():
    result = verdict(
        "{pull_request: null}",
        event_of("pull_request__from_fork"),
        "forks: true, secrets: [TOKEN]",
    )
    assert result.starts
    assert result.pipeline.snapshot(from_fork=True)["secrets"] == []
    assert result.pipeline.snapshot(from_fork=False)["secrets"] == ["TOKEN"]


def test_pull_request_from_a_deleted_fork_counts_as_a_fork():
    event = event_of("pull_request__from_fork", head_repository="")
    assert is_from_fork(event)
    assert "a deleted fork" in verdict("{pull_request: null}", event).reason


def test_pull_request_within_the_repository_is_not_a_fork():
    assert not is_from_fork(event_of("pull_request__opened"))


@pytest.mark.parametrize(
    ("pattern", "repository", "covered"),
    [
        ("acme/*", "acme/webapp", True),
        ("acme/*", "ACME/WebApp", True),
        ("acme/*", "other/webapp", False),
        ("acme/web*", "acme/webapp", True),
        ("*/*", "anyone/anything", True),
        ("acme/webapp", "acme/webapp-old", False),
    ],
)
def test_wildcard_repositories(pattern, repository, covered):
    config = config_with("{push: null}", repository=f"'{pattern}'")
    assert bool(match(config, push_to("refs/heads/main", repository=repository))) is covered


def test_first_covering_entry_wins():
    config = parse_pipelines(
        textwrap.dedent("""\
            repositories:
              acme/webapp:
                pipelines: {special: {on: {push: null}, steps: [{name: s, run: echo}]}}
              acme/*:
                pipelines: {general: {on: {push: null}, steps: [{name: s, run: echo}]}}
            """),
        "pipelines.yaml",
        {},
    )
    assert [v.pipeline.name for v in match(config, push_to("refs/heads/main"))] == ["special"]
    other = push_to("refs/heads/main", repository="acme/api")
    assert [v.pipeline.name for v in match(config, other)] == ["general"]


def test_events_other_than_push_and_pull_request_start_nothing():
    result = verdict("{push: null}", event_of("star__created"))
    assert (result.starts, result.reason) == (False, "pipelines do not run on star events")


def test_snapshot_holds_what_the_worker_needs():
    result = verdict(
        "{push: null}",
        push_to("refs/heads/main"),
        "runs_on: deploy, concurrency: prod, env: {A: b}",
    )
    snapshot = result.pipeline.snapshot(from_fork=False)
    assert snapshot == {
        "name": "ci",
        "steps": [
            {
                "name": "s",
                "run": "echo",
                "timeout": 3600,
                "env": {},
                "shell": ["bash", "-e", "-o", "pipefail", "-c"],
            }
        ],
        "env": {"A": "b"},
        "timeout": 3600,
        "workdir": "",
        "checkout": False,
        "clone_url": "",
        "keep_workspace": False,
        "secrets": [],
        "runs_on": "deploy",
        "needs": [],
        "concurrency": {"group": "prod", "cancel_in_progress": False},
    }
