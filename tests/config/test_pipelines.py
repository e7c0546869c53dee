"""Which pipelines a delivery starts: plain functions, table-driven."""

import dataclasses
import textwrap

import pytest

from runner.config.definition import RunDefinition
from runner.config.github import COMMITS_CAPPED, FILES_CAPPED, NO_COMMITS
from runner.config.matching import is_from_fork, match
from runner.config.pipelines_file import parse_pipelines
from runner.config.repositories import AmbiguousPipelines, Config
from runner.receiver.parsing import parse_event
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


def push_changing(*files, ref="refs/heads/main"):
    return push_to(ref, changed_files=files, changed_files_unknown="")


def push_with_unknown_files(why, ref="refs/heads/main"):
    return push_to(ref, changed_files=None, changed_files_unknown=why)


SRC = "{push: {paths: 'src/**'}}"
SRC_NOT_MD = "{push: {paths: ['src/**', '!src/**/*.md']}}"
NOT_DOCS = "{push: {paths_ignore: ['docs/**', '*.md']}}"
NOT_MD = "{push: {paths_ignore: ['**.md', '!CHANGELOG.md']}}"


@pytest.mark.parametrize(
    ("on", "event", "starts", "reason"),
    [
        (SRC, push_changing("src/app.py", "README.md"), True, "triggers match"),
        (
            SRC,
            push_changing("README.md", "docs/a.md", "setup.cfg"),
            False,
            "paths: none of the 3 changed files matches paths (src/**)",
        ),
        (
            SRC,
            push_changing("README.md"),
            False,
            "paths: the one changed file, README.md, does not match paths (src/**)",
        ),
        ("{push: {paths: '*.py'}}", push_changing("src/app.py"), False, None),
        ("{push: {paths: '**.py'}}", push_changing("src/app.py"), True, "triggers match"),
        (SRC_NOT_MD, push_changing("src/app.py", "src/notes.md"), True, "triggers match"),
        (
            SRC_NOT_MD,
            push_changing("src/docs/notes.md"),
            False,
            "paths: the one changed file, src/docs/notes.md, does not match paths "
            "(src/**, !src/**/*.md)",
        ),
        (NOT_DOCS, push_changing("docs/a.md", "src/app.py"), True, "triggers match"),
        (
            NOT_DOCS,
            push_changing("docs/a.md", "README.md"),
            False,
            "paths: all 2 changed files match paths_ignore (docs/**, *.md)",
        ),
        (
            NOT_DOCS,
            push_changing("README.md"),
            False,
            "paths: the one changed file, README.md, matches paths_ignore (docs/**, *.md)",
        ),
        (NOT_MD, push_changing("docs/a.md", "CHANGELOG.md"), True, "triggers match"),
        (NOT_MD, push_changing("docs/a.md"), False, None),
        (SRC, push_changing(), False, "paths: the push's commits change no files"),
        (NOT_DOCS, push_changing(), False, "paths: the push's commits change no files"),
        (
            SRC,
            push_with_unknown_files(NO_COMMITS),
            True,
            "paths: the push lists no commits, so it runs",
        ),
        (
            NOT_DOCS,
            push_with_unknown_files(COMMITS_CAPPED),
            True,
            "paths: the push may hold more commits than the payload lists, so it runs",
        ),
        (
            SRC,
            push_with_unknown_files(FILES_CAPPED),
            True,
            "paths: a commit may change more files than the payload lists, so it runs",
        ),
        (
            SRC,
            push_changing("README.md", ref="refs/tags/v1"),
            True,
            "paths: not checked for a tag push (as on GitHub), so it runs",
        ),
        (
            "{push: {tags: 'v*', paths: 'src/**'}}",
            push_changing("README.md", ref="refs/tags/v1"),
            True,
            "paths: not checked for a tag push (as on GitHub), so it runs",
        ),
        (
            "{push: {branches: main, paths: 'src/**'}}",
            push_changing("src/app.py", ref="refs/heads/dev"),
            False,
            "branch dev matches none of branches (main)",
        ),
        (
            "{push: {branches: main, paths: 'src/**'}}",
            push_changing("README.md", ref="refs/tags/v1"),
            False,
            "tag v1: the push trigger lists only branches",
        ),
        ("{push: {branches: main}}", push_changing(), True, "triggers match"),
        (
            "{push: {paths: 'src/**', deletions: true}}",
            event_of("push__branch_deleted"),
            True,
            "paths: not checked for a deletion, so it runs",
        ),
        (
            SRC,
            event_of("push__branch"),
            False,
            "paths: none of the 3 changed files matches paths (src/**)",
        ),
        ("{push: {paths: 'webapp/**'}}", event_of("push__branch"), True, "triggers match"),
        (
            SRC,
            event_of("push__new_branch"),
            True,
            "paths: the push lists no commits, so it runs",
        ),
        (
            SRC,
            event_of("push__tag"),
            True,
            "paths: not checked for a tag push (as on GitHub), so it runs",
        ),
    ],
)
def test_push_path_filters(on, event, starts, reason):
    result = verdict(on, event)
    assert result.starts is starts
    if reason is not None:
        assert result.reason == reason


def test_a_push_that_runs_without_its_paths_checked_says_so():
    result = verdict(SRC, push_with_unknown_files(NO_COMMITS))
    assert str(result) == "ci: starts (paths: the push lists no commits, so it runs)"
    assert str(verdict(SRC, push_changing("src/app.py"))) == "ci: starts"


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
    assert RunDefinition.of(result.pipeline, from_fork=True).to_json()["secrets"] == []
    assert RunDefinition.of(result.pipeline, from_fork=False).to_json()["secrets"] == ["TOKEN"]


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


def parse(text: str, environ=None):
    return parse_pipelines(textwrap.dedent(text), "pipelines.yaml", environ or {})


ORGANISATION = """\
    repositories:
      acme/*:
        secret_env: ACME_SECRET
        token_env: ACME_TOKEN
        clone_url: "git@github.com:{repository}.git"
        pipelines: {lint: {on: push, steps: [{name: s, run: make lint}]}}
      acme/shop:
        report_status: true
        pipelines: {test: {on: push, steps: [{name: s, run: make test}]}}
      acme/shop-*:
        secret_env: SHOP_SECRET
        clone_url: /srv/mirrors/shop.git
        pipelines: {deploy: {on: push, steps: [{name: s, run: make deploy}]}}
    """
SECRETS = {"ACME_SECRET": "acme's", "ACME_TOKEN": "t", "SHOP_SECRET": "the shops'"}


def test_an_organisation_entry_adds_its_pipelines_to_a_repositorys_own():
    config = parse(ORGANISATION, SECRETS)
    shop = push_to("refs/heads/main", repository="acme/shop")
    assert [v.pipeline.name for v in match(config, shop)] == ["lint", "test"]
    other = push_to("refs/heads/main", repository="acme/api")
    assert [v.pipeline.name for v in match(config, other)] == ["lint"]
    assert config.repository("acme/shop-eu").patterns == "acme/*, acme/shop-*"
    assert config.repository("other/shop") is None


def test_each_setting_comes_from_the_most_specific_entry_that_gives_it():
    config = parse(ORGANISATION, SECRETS)
    shop = config.repository("acme/shop")
    assert (shop.secret_env, shop.secret, shop.token_env) == ("ACME_SECRET", "acme's", "ACME_TOKEN")
    assert [(p.name, p.report_status, p.clone_url) for p in shop.pipelines] == [
        ("lint", True, "git@github.com:{repository}.git"),
        ("test", True, "git@github.com:{repository}.git"),
    ]
    shop_eu = config.repository("acme/shop-eu")
    assert (shop_eu.secret_env, shop_eu.secret) == ("SHOP_SECRET", "the shops'")
    assert [(p.name, p.report_status, p.clone_url) for p in shop_eu.pipelines] == [
        ("lint", False, "/srv/mirrors/shop.git"),
        ("deploy", False, "/srv/mirrors/shop.git"),
    ]


def test_an_exact_name_is_more_specific_than_any_wildcard_and_a_tie_goes_to_the_higher():
    config = parse(
        """\
        repositories:
          "acme/sho?":
            secret_env: FIRST
            clone_url: /srv/first
            pipelines: {a: {on: push, steps: [{name: s, run: echo}]}}
          "acme/?hop":
            secret_env: SECOND
            clone_url: /srv/second
            pipelines: {b: {on: push, steps: [{name: s, run: echo}]}}
          ACME/Shop:
            clone_url: /srv/exact
            pipelines: {c: {on: push, steps: [{name: s, run: echo}]}}
        """,
        {"FIRST": "1", "SECOND": "2"},
    )
    shop = config.repository("acme/shop")
    assert (shop.clone_url, shop.secret_env) == ("/srv/exact", "FIRST")
    assert config.repository("acme/chop").secret_env == "SECOND"


def test_a_pipelines_own_report_status_wins_over_its_repositorys():
    config = parse(
        """\
        repositories:
          acme/*:
            token_env: ACME_TOKEN
            report_status: true
            pipelines:
              quiet: {on: push, report_status: false, steps: [{name: s, run: echo}]}
              loud: {on: push, steps: [{name: s, run: echo}]}
          acme/docs:
            report_status: false
            pipelines:
              shown: {on: push, report_status: true, steps: [{name: s, run: echo}]}
        """,
        {"ACME_TOKEN": "t"},
    )
    statuses = {p.name: p.report_status for p in config.repository("acme/docs").pipelines}
    assert statuses == {"quiet": False, "loud": False, "shown": True}
    statuses = {p.name: p.report_status for p in config.repository("acme/api").pipelines}
    assert statuses == {"quiet": False, "loud": True}


def test_a_pipeline_two_entries_define_for_one_repository_is_refused_at_match_time_too():
    read = parse(ORGANISATION, SECRETS)
    lint = read.repositories[0].pipelines[0]
    doubled = dataclasses.replace(read.repositories[1], pipelines=(lint,), line=7)
    config = Config((dataclasses.replace(read.repositories[0], line=2), doubled))
    with pytest.raises(AmbiguousPipelines) as raised:
        match(config, push_to("refs/heads/main", repository="acme/shop"))
    assert str(raised.value) == (
        "acme/shop: pipeline lint is defined by both acme/* (line 2) and acme/shop (line 7)"
    )
    assert [v.pipeline.name for v in match(config, push_to("refs/heads/main"))] == ["lint"]


def test_events_other_than_push_and_pull_request_start_nothing():
    result = verdict("{push: null}", event_of("star__created"))
    assert (result.starts, result.reason) == (False, "pipelines do not run on star events")


def test_a_runs_definition_holds_what_the_worker_needs():
    result = verdict(
        "{push: null}",
        push_to("refs/heads/main"),
        "runs_on: deploy, concurrency: prod, env: {A: b}",
    )
    snapshot = RunDefinition.of(result.pipeline, from_fork=False).to_json()
    assert snapshot == {
        "version": 1,
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
        "report_status": False,
        "token_env": "",
        "notify": [],
        "concurrency": {"group": "prod", "cancel_in_progress": False},
        "sandbox": {"enabled": True, "writable": [], "readonly": [], "network": True},
        "environment": None,
        "approval": None,
        "inputs": [],
    }


def test_a_runs_definition_holds_statuses_and_notifications_with_the_repository_defaults():
    config = parse_pipelines(
        textwrap.dedent("""\
            repositories:
              acme/webapp:
                token_env: TOKEN
                report_status: true
                pipelines:
                  ci:
                    on: {push: null}
                    steps: [{name: s, run: echo}]
                    notify:
                      - https://chat.example/hook
                      - {url: "http://127.0.0.1:9000/ci", on: changes, secret_env: TOKEN}
                  quiet:
                    on: {push: null}
                    steps: [{name: s, run: echo}]
                    report_status: false
            """),
        "pipelines.yaml",
        {"TOKEN": "x"},
    )
    ci, quiet = (
        RunDefinition.of(v.pipeline, from_fork=True).to_json()
        for v in match(config, push_to("refs/heads/main"))
    )
    assert (ci["report_status"], ci["token_env"]) == (True, "TOKEN")
    assert ci["notify"] == [
        {"url": "https://chat.example/hook", "on": "always", "secret_env": ""},
        {"url": "http://127.0.0.1:9000/ci", "on": "changes", "secret_env": "TOKEN"},
    ]
    assert (quiet["report_status"], quiet["token_env"], quiet["notify"]) == (False, "TOKEN", [])
