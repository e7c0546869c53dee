import textwrap
from pathlib import Path

import pytest

from runner.config.pipelines import PullRequestTrigger, PushTrigger
from runner.config.pipelines_file import PipelinesError, load_pipelines, parse_pipelines

BASE_DIR = Path(__file__).resolve().parents[2]
ENVIRON = {"DEPLOY_TOKEN": "t0ken", "WEBAPP_SECRET": "per-repo"}


def parse(text: str, environ=ENVIRON):
    return parse_pipelines(textwrap.dedent(text), "pipelines.yaml", environ)


def problems(text: str, environ=ENVIRON) -> list[str]:
    with pytest.raises(PipelinesError) as raised:
        parse(text, environ)
    return [str(problem) for problem in raised.value.problems]


MINIMAL = """\
repositories:
  acme/webapp:
    pipelines:
      test:
        on:
          push:
        steps:
          - name: test
            run: make test
"""


def test_example_pipelines_file_at_the_root_is_valid():
    # Only valid: it is the user's to edit (README says so), and no other test reads it.
    assert load_pipelines(BASE_DIR / "pipelines.yaml", {}).repositories


def test_minimal_pipeline_gets_documented_defaults():
    pipeline = parse(MINIMAL).repositories[0].pipelines[0]
    assert (pipeline.timeout, pipeline.runs_on, pipeline.checkout, pipeline.forks) == (
        3600,
        "default",
        False,
        False,
    )
    assert pipeline.steps[0].timeout == 3600
    assert pipeline.pull_request is None
    assert pipeline.push.branches is None


def test_full_pipeline_is_read_into_typed_values():
    config = parse("""\
        repositories:
          acme/webapp:
            secret_env: WEBAPP_SECRET
            pipelines:
              deploy:
                on:
                  push: {branches: [main, "release/**"], tags: "v*", deletions: true}
                  pull_request: {types: [opened, closed], branches: main}
                timeout: 1h30m
                workdir: /srv/webapp
                env: {STAGE: production, RETRIES: 3}
                secrets: [DEPLOY_TOKEN]
                runs_on: deploy-box
                concurrency: {group: production, cancel_in_progress: true}
                forks: true
                steps:
                  - {name: pull, run: git pull, timeout: 90s, env: {GIT_TERMINAL_PROMPT: "0"}}
                  - {name: restart, run: systemctl restart webapp, timeout: 120}
        """)
    entry = config.repositories[0]
    assert (entry.secret_env, entry.secret) == ("WEBAPP_SECRET", "per-repo")
    pipeline = entry.pipelines[0]
    assert [glob.pattern for glob in pipeline.push.branches] == ["main", "release/**"]
    assert [glob.pattern for glob in pipeline.push.tags] == ["v*"]
    assert pipeline.push.deletions
    assert pipeline.pull_request.types == {"opened", "closed"}
    assert (pipeline.timeout, pipeline.workdir, pipeline.runs_on) == (
        5400,
        "/srv/webapp",
        "deploy-box",
    )
    assert pipeline.env == {"STAGE": "production", "RETRIES": "3"}
    assert pipeline.secrets == ("DEPLOY_TOKEN",)
    assert (pipeline.concurrency.group, pipeline.concurrency.cancel_in_progress) == (
        "production",
        True,
    )
    assert [(step.name, step.timeout) for step in pipeline.steps] == [
        ("pull", 90),
        ("restart", 120),
    ]
    assert pipeline.steps[0].env == {"GIT_TERMINAL_PROMPT": "0"}


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("90s", 90), ("20m", 1200), ("1h", 3600), ("1h30m", 5400), ("2m5s", 125), (45, 45)],
)
def test_durations_are_read_in_seconds(duration, seconds):
    text = MINIMAL.replace("      test:\n", f"      test:\n        timeout: {duration}\n")
    assert parse(text).repositories[0].pipelines[0].timeout == seconds


@pytest.mark.parametrize("duration", ["0", "-5", "10x", "1.5h", "h", "''", "true", "[1]"])
def test_bad_durations_are_named(duration):
    text = MINIMAL.replace("      test:\n", f"      test:\n        timeout: {duration}\n")
    (problem,) = problems(text)
    assert problem.startswith("pipelines.yaml:5: repositories.acme/webapp.pipelines.test.timeout:")
    assert "is not a duration" in problem or "must be" in problem


@pytest.mark.parametrize(
    ("old", "new", "line", "where", "message"),
    [
        ("        on:\n", "        colour: blue\n        on:\n", 5, "T", "unknown key 'colour'"),
        (
            "          push:\n",
            "          push:\n          release:\n",
            7,
            "T.on",
            "unknown event 'release'",
        ),
        (
            "            run: make test\n",
            "            run: [make, test]\n",
            9,
            "T.steps[0].run",
            "must be a string, not a list",
        ),
        (
            "        steps:\n          - name: test\n            run: make test\n",
            "        steps: []\n",
            7,
            "T.steps",
            "is empty",
        ),
        (
            "          push:\n",
            "          push: {branches: 'v[12'}\n",
            6,
            "T.on.push.branches",
            "bad pattern 'v[12'",
        ),
        (
            "          push:\n",
            "          push:\n          push:\n",
            7,
            "T.on",
            "duplicate event 'push'",
        ),
        (
            "            run: make test\n",
            "            run: make test\n      test: {on: {push: null}, steps: [{name: a, run: b}]}"
            "\n",
            10,
            "R.pipelines",
            "duplicate key 'test'",
        ),
        (
            "          - name: test\n",
            "          - name: test\n            run: a\n          - name: test\n",
            10,
            "T.steps[1]",
            "duplicate step name 'test'",
        ),
        (
            "        on:\n",
            "        secrets: [UNSET_TOKEN]\n        on:\n",
            5,
            "T.secrets",
            "names UNSET_TOKEN, which is not set",
        ),
        (
            "    pipelines:\n",
            "    secret_env: MISSING_SECRET\n    pipelines:\n",
            3,
            "R.secret_env",
            "names MISSING_SECRET, which is not set",
        ),
        (
            "        on:\n",
            "        runs_on: 'two words'\n        on:\n",
            5,
            "T.runs_on",
            "'two words' is not a queue name",
        ),
        (
            "        on:\n",
            "        checkout: yes please\n        on:\n",
            5,
            "T.checkout",
            "must be true or false, not a string",
        ),
        (
            "        on:\n",
            "        workdir: relative/dir\n        on:\n",
            5,
            "T.workdir",
            "must be an absolute path",
        ),
        (
            "        on:\n",
            "        env: {GITHUB_SHA: forged}\n        on:\n",
            5,
            "T.env",
            "'GITHUB_SHA' cannot be set",
        ),
        (
            "        on:\n",
            "        env: {DEBUG: true}\n        on:\n",
            5,
            "T.env.DEBUG",
            "must be a string (quote it)",
        ),
        (
            "          push:\n",
            "          pull_request: {types: [opened, merged]}\n",
            6,
            "T.on.pull_request.types",
            "unknown type 'merged'",
        ),
        ("  acme/webapp:\n", "  acme:\n", 2, "repositories.acme", "is not owner/name"),
        ("        on:\n          push:\n", "        on: {}\n", 5, "T.on", "names no event"),
        ("        on:\n          push:\n", "", 4, "T", "needs 'on'"),
        (
            "          push:\n",
            "          push: {paths: 'src/**', paths_ignore: docs}\n",
            6,
            "T.on.push",
            "has both paths and paths_ignore; use one (a '!' pattern in paths excludes)",
        ),
        (
            "          push:\n",
            "          push:\n            paths: ['src/[x']\n",
            7,
            "T.on.push.paths",
            "bad pattern 'src/[x'",
        ),
        (
            "          push:\n",
            "          push:\n            paths_ignore: {docs: true}\n",
            7,
            "T.on.push.paths_ignore",
            "must be a string or a list of strings, not a mapping",
        ),
        (
            "          push:\n",
            "          pull_request:\n            types: [opened]\n            paths: ['src/**']\n",
            8,
            "T.on.pull_request",
            "cannot filter by paths: a pull_request delivery does not list the changed files",
        ),
        (
            "          push:\n",
            "          pull_request: {paths_ignore: docs}\n",
            6,
            "T.on.pull_request",
            "cannot filter by paths_ignore: a pull_request delivery does not list",
        ),
        (
            "        on:\n",
            "        report_status: maybe\n        on:\n",
            5,
            "T.report_status",
            "must be true or false, not a string",
        ),
        (
            "        on:\n",
            "        report_status: true\n        on:\n",
            5,
            "R",
            "report_status needs token_env: the variable holding a GitHub token",
        ),
        (
            "    pipelines:\n",
            "    report_status: true\n    pipelines:\n",
            3,
            "R",
            "report_status needs token_env: the variable holding a GitHub token",
        ),
        (
            "    pipelines:\n",
            "    report_status: true\n    token_env: ''\n    pipelines:\n",
            3,
            "R",
            "report_status needs token_env: the variable holding a GitHub token",
        ),
        (
            "    pipelines:\n",
            "    token_env: MISSING_TOKEN\n    pipelines:\n",
            3,
            "R.token_env",
            "names MISSING_TOKEN, which is not set in hookrunner's environment",
        ),
        (
            "    pipelines:\n",
            "    token_env: github-token\n    pipelines:\n",
            3,
            "R.token_env",
            "'github-token' is not an environment variable name",
        ),
        (
            "        on:\n",
            "        notify: [ftp://chat.example/hook]\n        on:\n",
            5,
            "T.notify[0]",
            "'ftp://chat.example/hook' is not an http:// or https:// URL",
        ),
        (
            "        on:\n",
            "        notify:\n          - {url: chat.example/hook}\n        on:\n",
            6,
            "T.notify[0].url",
            "'chat.example/hook' is not an http:// or https:// URL",
        ),
        (
            "        on:\n",
            "        notify:\n          - url: https://chat.example/hook\n"
            "            on: sometimes\n        on:\n",
            7,
            "T.notify[0].on",
            "'sometimes' is not one of always, failure, changes",
        ),
        (
            "        on:\n",
            "        notify: [{on: failure}]\n        on:\n",
            5,
            "T.notify[0]",
            "needs 'url'",
        ),
        (
            "        on:\n",
            "        notify: [{url: 'https://chat.example', method: PUT}]\n        on:\n",
            5,
            "T.notify[0]",
            "unknown key 'method' (allowed: url, on, secret_env)",
        ),
        (
            "        on:\n",
            "        notify: [{url: 'https://chat.example', secret_env: NOPE}]\n        on:\n",
            5,
            "T.notify[0].secret_env",
            "names NOPE, which is not set in hookrunner's environment",
        ),
        ("        on:\n", "        notify: []\n        on:\n", 5, "T.notify", "is an empty list"),
        (
            "        on:\n",
            "        notify:\n          - https://chat.example\n"
            "          - {url: 'https://chat.example', on: failure}\n        on:\n",
            7,
            "T.notify[1]",
            "duplicate url 'https://chat.example'",
        ),
        (
            "        on:\n",
            "        notify: [42]\n        on:\n",
            5,
            "T.notify[0]",
            "must be a string, not a number",
        ),
    ],
)
def test_each_mistake_is_reported_with_file_line_and_place(old, new, line, where, message):
    # T is the test pipeline's path, R its repository's.
    where = where.replace("T", "repositories.acme/webapp.pipelines.test", 1)
    where = where.replace("R", "repositories.acme/webapp", 1)
    assert old in MINIMAL
    reported = problems(MINIMAL.replace(old, new, 1))
    expected = f"pipelines.yaml:{line}: {where}: {message}"
    assert any(problem.startswith(expected) for problem in reported), reported


def test_every_problem_is_reported_at_once():
    reported = problems("""\
        repositories:
          acme/webapp:
            pipelines:
              test:
                on: {push: {branches: "[x"}}
                timeout: forever
                steps: []
              test-two:
                bogus: 1
                on: {push: null}
                steps: [{name: a}]
        """)
    assert len(reported) == 5, reported
    assert [problem.split(":")[1] for problem in reported] == ["5", "6", "7", "9", "11"]


def test_yaml_syntax_error_names_its_line():
    (problem,) = problems("repositories:\n  acme/webapp:\n    pipelines: [unclosed\n")
    assert problem.startswith("pipelines.yaml:4: file:")
    assert "(YAML syntax)" in problem


def test_empty_file_says_what_it_needs():
    assert problems("") == ["pipelines.yaml:1: file: is empty; it needs a repositories: mapping"]


def test_both_workdir_and_checkout_is_refused():
    text = MINIMAL.replace(
        "        on:\n", "        workdir: /srv\n        checkout: true\n        on:\n"
    )
    assert any("has both workdir and checkout" in problem for problem in problems(text))


def test_step_timeout_longer_than_its_pipeline_is_refused():
    text = MINIMAL.replace("        on:\n", "        timeout: 1m\n        on:\n").replace(
        "run: make test\n", "run: make test\n            timeout: 2m\n"
    )
    assert any("is longer than the pipeline's" in problem for problem in problems(text))


def test_steps_run_under_bash_with_errexit_and_pipefail_by_default():
    step = parse(MINIMAL).repositories[0].pipelines[0].steps[0]
    assert step.shell == ("bash", "-e", "-o", "pipefail", "-c")


def test_pipeline_shell_applies_to_its_steps_and_a_step_may_name_its_own():
    text = MINIMAL.replace("        on:\n", "        shell: sh -eu -c\n        on:\n").replace(
        "run: make test\n",
        "run: make test\n          - name: report\n            run: print(1)\n"
        "            shell: python3 -c\n",
    )
    steps = parse(text).repositories[0].pipelines[0].steps
    assert [step.shell for step in steps] == [("sh", "-eu", "-c"), ("python3", "-c")]


@pytest.mark.parametrize(
    ("shell", "message"),
    [('""', "is empty"), ("'bash -c \"unclosed'", "cannot be split into words")],
)
def test_unusable_shell_is_refused(shell, message):
    text = MINIMAL.replace("        on:\n", f"        shell: {shell}\n        on:\n")
    (problem,) = problems(text)
    assert problem.startswith("pipelines.yaml:5: repositories.acme/webapp.pipelines.test.shell")
    assert message in problem


def test_clone_url_of_a_repository_reaches_each_of_its_pipelines():
    text = MINIMAL.replace(
        "    pipelines:\n", "    clone_url: git@example.com:acme/webapp.git\n    pipelines:\n"
    ).replace(
        "        on:\n", "        checkout: true\n        keep_workspace: true\n        on:\n"
    )
    (pipeline,) = parse(text).repository("acme/webapp").pipelines
    assert (pipeline.clone_url, pipeline.keep_workspace) == (
        "git@example.com:acme/webapp.git",
        True,
    )


def test_keep_workspace_without_checkout_is_refused():
    text = MINIMAL.replace("        on:\n", "        keep_workspace: true\n        on:\n")
    (problem,) = problems(text)
    assert "keep_workspace: needs checkout: true" in problem


def test_unreadable_file_is_a_problem_not_a_crash(tmp_path):
    with pytest.raises(PipelinesError, match="cannot be read"):
        load_pipelines(tmp_path / "missing.yaml", {})


def test_yaml_anchors_and_merge_keys_can_share_settings():
    config = parse("""\
        repositories:
          acme/webapp:
            pipelines:
              base: &base
                on: {push: {branches: main}}
                steps: [{name: a, run: echo a}]
              other:
                <<: *base
                runs_on: other
        """)
    other = config.repositories[0].pipelines[1]
    assert (other.runs_on, other.steps[0].run) == ("other", "echo a")


def yaml_example(page: str) -> str:
    """The first ```yaml block of a documentation page."""
    return (BASE_DIR / page).read_text().split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_is_valid():
    example = yaml_example("README.md")
    config = parse_pipelines(example, "README.md", {"ACME_GITHUB_TOKEN": "t", "DEPLOY_TOKEN": "d"})
    test, deploy = config.repositories[0].pipelines
    assert (test.name, deploy.name, deploy.needs) == ("test", "deploy", ("test",))


def test_the_full_example_of_the_pipelines_page_is_valid():
    example = yaml_example("docs/pipelines.md")
    environ = {
        "WEBAPP_HOOK_SECRET": "s",
        "DEPLOY_TOKEN": "t",
        "GITHUB_TOKEN": "g",
        "NOTIFY_SECRET": "n",
    }
    config = parse_pipelines(example, "docs/pipelines.md", environ)
    test, deploy = config.repository("acme/webapp").pipelines
    assert [p.name for p in (test, deploy)] == ["test", "deploy"]
    assert (test.report_status, deploy.report_status, deploy.token_env) == (
        True,
        False,
        "GITHUB_TOKEN",
    )
    assert [n.on for n in deploy.notify] == ["always", "failure"]
    assert test.push.paths_ignore and deploy.push.paths


NEEDS = """\
repositories:
  acme/webapp:
    pipelines:
      test:
        on: {push: null}
        needs: [NEEDS_OF_TEST]
        steps: [{name: t, run: 'true'}]
      deploy:
        on: {push: null}
        needs: [test]
        steps: [{name: d, run: 'true'}]
"""


def test_needs_names_other_pipelines_of_the_repository():
    config = parse(NEEDS.replace("        needs: [NEEDS_OF_TEST]\n", ""))
    assert [p.needs for p in config.repositories[0].pipelines] == [(), ("test",)]


def test_needing_an_unknown_pipeline_is_refused():
    (problem,) = problems(NEEDS.replace("NEEDS_OF_TEST", "lint"))
    assert problem == (
        "pipelines.yaml:6: repositories.acme/webapp.pipelines.test.needs: "
        "names 'lint', which is not a pipeline here"
    )


def test_needs_that_go_round_in_a_circle_are_refused():
    found = problems(NEEDS.replace("NEEDS_OF_TEST", "deploy"))
    circle = "needs: goes round in a circle back to this pipeline"
    assert found == [
        f"pipelines.yaml:6: repositories.acme/webapp.pipelines.test.{circle}",
        f"pipelines.yaml:10: repositories.acme/webapp.pipelines.deploy.{circle}",
    ]


def with_lines(text: str, after: str, lines: str) -> str:
    assert after in text
    return text.replace(after, after + textwrap.indent(textwrap.dedent(lines), " " * 8), 1)


def test_push_path_filters_are_read_into_globs():
    text = MINIMAL.replace(
        "          push:\n", "          push:\n            paths: ['src/**', '!src/**/*.md']\n"
    )
    push = parse(text).repositories[0].pipelines[0].push
    assert [(glob.pattern, glob.negated) for glob in push.paths] == [
        ("src/**", False),
        ("!src/**/*.md", True),
    ]
    assert push.paths_ignore == ()
    ignoring = MINIMAL.replace("          push:\n", "          push: {paths_ignore: docs/**}\n")
    push = parse(ignoring).repositories[0].pipelines[0].push
    assert (push.paths, [glob.pattern for glob in push.paths_ignore]) == (None, ["docs/**"])


def test_statuses_and_notifications_are_off_by_default():
    repository = parse(MINIMAL).repository("acme/webapp")
    (pipeline,) = repository.pipelines
    assert (repository.token_env, repository.report_status) == ("", False)
    assert (pipeline.report_status, pipeline.token_env, pipeline.notify) == (False, "", ())


STATUSES = """\
repositories:
  acme/webapp:
    token_env: DEPLOY_TOKEN
    report_status: true
    pipelines:
      test:
        on: {push: null}
        steps: [{name: t, run: 'true'}]
      deploy:
        on: {push: null}
        report_status: false
        steps: [{name: d, run: 'true'}]
"""


def test_repository_report_status_is_each_pipelines_default_and_token_env_reaches_them():
    repository = parse(STATUSES).repository("acme/webapp")
    assert (repository.token_env, repository.report_status) == ("DEPLOY_TOKEN", True)
    assert [(p.name, p.report_status, p.token_env) for p in repository.pipelines] == [
        ("test", True, "DEPLOY_TOKEN"),
        ("deploy", False, "DEPLOY_TOKEN"),
    ]


def test_token_env_is_needed_only_when_a_pipeline_ends_up_reporting():
    none_reporting = STATUSES.replace("    token_env: DEPLOY_TOKEN\n", "").replace(
        "        on: {push: null}\n        steps: [{name: t",
        "        on: {push: null}\n        report_status: false\n        steps: [{name: t",
    )
    repository = parse(none_reporting).repository("acme/webapp")
    assert not any(p.report_status for p in repository.pipelines)
    token_only = MINIMAL.replace(
        "    pipelines:\n", "    token_env: DEPLOY_TOKEN\n    pipelines:\n"
    )
    (pipeline,) = parse(token_only).repository("acme/webapp").pipelines
    assert pipeline.token_env == "DEPLOY_TOKEN"


def test_missing_token_env_is_reported_once_where_report_status_is_inherited():
    found = problems(STATUSES.replace("    token_env: DEPLOY_TOKEN\n", ""))
    assert found == [
        "pipelines.yaml:3: repositories.acme/webapp: "
        "report_status needs token_env: the variable holding a GitHub token"
    ]


def test_notify_entries_are_read_with_their_defaults():
    text = with_lines(
        MINIMAL,
        "      test:\n",
        """\
        notify:
          - https://chat.example/hooks/ci
          - url: http://127.0.0.1:9000/ci
            on: changes
            secret_env: WEBAPP_SECRET
          - {url: "https://pager.example/", on: failure}
        """,
    )
    notify = parse(text).repositories[0].pipelines[0].notify
    assert [(n.url, n.on, n.secret_env) for n in notify] == [
        ("https://chat.example/hooks/ci", "always", ""),
        ("http://127.0.0.1:9000/ci", "changes", "WEBAPP_SECRET"),
        ("https://pager.example/", "failure", ""),
    ]


def test_a_single_notify_entry_counts_as_a_list_of_one():
    text = with_lines(MINIMAL, "      test:\n", "notify: {url: 'https://chat.example'}\n")
    (only,) = parse(text).repositories[0].pipelines[0].notify
    assert (only.url, only.on) == ("https://chat.example", "always")


@pytest.mark.parametrize(
    "url",
    [
        "https://",
        "https://exa mple.com/",
        "https://example.com:port/",
        "mailto:ops@example.com",
        "",
    ],
)
def test_notify_urls_that_cannot_be_posted_to_are_refused(url):
    text = with_lines(MINIMAL, "      test:\n", f"notify: ['{url}']\n")
    (problem,) = problems(text)
    assert problem == (
        "pipelines.yaml:5: repositories.acme/webapp.pipelines.test.notify[0]: "
        f"{url!r} is not an http:// or https:// URL"
    )


@pytest.mark.parametrize(
    ("old", "new", "line", "where", "message"),
    [
        (
            "          push:\n",
            "          push: {branches-ignore: gh-pages}\n",
            6,
            "T.on.push",
            "unknown key 'branches-ignore': hookrunner spells it branches_ignore",
        ),
        (
            "          push:\n",
            "          push: {tags-ignore: 'v*-rc*'}\n",
            6,
            "T.on.push",
            "unknown key 'tags-ignore': hookrunner spells it tags_ignore",
        ),
        (
            "          push:\n",
            "          push: {paths-ignore: docs/**}\n",
            6,
            "T.on.push",
            "unknown key 'paths-ignore': hookrunner spells it paths_ignore",
        ),
        (
            "          push:\n",
            "          pull_request: {branches-ignore: wip/**}\n",
            6,
            "T.on.pull_request",
            "unknown key 'branches-ignore': hookrunner spells it branches_ignore",
        ),
        (
            "          push:\n",
            "          pull_request: {paths-ignore: docs/**}\n",
            6,
            "T.on.pull_request",
            "cannot filter by paths-ignore: a pull_request delivery does not list",
        ),
        (
            "        on:\n",
            "        concurrency: {group: deploy, cancel-in-progress: true}\n        on:\n",
            5,
            "T.concurrency",
            "unknown key 'cancel-in-progress': hookrunner spells it cancel_in_progress",
        ),
        (
            "        on:\n",
            "        keep-workspace: true\n        on:\n",
            5,
            "T",
            "unknown key 'keep-workspace': hookrunner spells it keep_workspace",
        ),
        (
            "        on:\n",
            "        runs-on: ubuntu-latest\n        on:\n",
            5,
            "T",
            "unknown key 'runs-on': hookrunner's runs_on names a worker queue ('default' if "
            "left out), not a runner label such as 'ubuntu-latest': steps run on the machine "
            "of a worker taking that queue",
        ),
        (
            "        on:\n",
            "        timeout-minutes: 20\n        on:\n",
            5,
            "T",
            "unknown key 'timeout-minutes': hookrunner's is timeout, a duration: timeout: 20m",
        ),
        (
            "            run: make test\n",
            "            run: make test\n            timeout-minutes: 5\n",
            10,
            "T.steps[0]",
            "unknown key 'timeout-minutes': hookrunner's is timeout, a duration: timeout: 5m",
        ),
        (
            "          push:\n",
            "          push: {runs-on: deploy}\n",
            6,
            "T.on.push",
            "unknown key 'runs-on' (allowed: branches, branches_ignore, tags",
        ),
    ],
)
def test_github_actions_spellings_are_answered_with_hookrunners(old, new, line, where, message):
    where = where.replace("T", "repositories.acme/webapp.pipelines.test", 1)
    (problem,) = problems(MINIMAL.replace(old, new, 1))
    assert problem.startswith(f"pipelines.yaml:{line}: {where}: {message}"), problem


@pytest.mark.parametrize(
    ("on", "events"),
    [
        ("push", ["push"]),
        ("pull_request", ["pull_request"]),
        ("[push, pull_request]", ["push", "pull_request"]),
        ("\n          - pull_request\n          - push", ["push", "pull_request"]),
    ],
)
def test_on_may_name_one_event_or_a_list_of_them_each_with_no_filter(on, events):
    text = MINIMAL.replace("        on:\n          push:\n", f"        on: {on}\n")
    pipeline = parse(text).repositories[0].pipelines[0]
    unfiltered = {"push": PushTrigger(), "pull_request": PullRequestTrigger()}
    assert {"push": pipeline.push, "pull_request": pipeline.pull_request} == {
        event: unfiltered[event] if event in events else None for event in unfiltered
    }


@pytest.mark.parametrize(
    ("on", "line", "message"),
    [
        ("release", 5, "unknown event 'release' (allowed: push, pull_request, manual)"),
        ("\n          - push\n          - release", 7, "unknown event 'release' (allowed: "),
        ("[push, push]", 5, "duplicate event 'push'"),
        ("[]", 5, "names no event (use push, pull_request and/or manual)"),
        ("", 5, "names no event (use push, pull_request and/or manual)"),
    ],
)
def test_a_list_of_events_is_checked_like_a_mapping_of_them(on, line, message):
    text = MINIMAL.replace("        on:\n          push:\n", f"        on: {on}\n")
    (problem,) = problems(text)
    assert problem.startswith(
        f"pipelines.yaml:{line}: repositories.acme/webapp.pipelines.test.on: {message}"
    )


@pytest.mark.parametrize(
    ("trigger", "include", "ignore"),
    [
        ("push: {branches: main, branches_ignore: wip}", "branches", "branches_ignore"),
        ("push: {tags: 'v*', tags_ignore: 'v*-rc'}", "tags", "tags_ignore"),
        ("push: {paths: src, paths_ignore: docs}", "paths", "paths_ignore"),
        ("pull_request: {branches: main, branches_ignore: wip}", "branches", "branches_ignore"),
    ],
)
def test_a_filter_list_and_its_ignore_list_in_one_trigger_are_refused_as_on_github(
    trigger, include, ignore
):
    (problem,) = problems(MINIMAL.replace("          push:\n", f"          {trigger}\n"))
    event = trigger.split(":")[0]
    assert problem == (
        f"pipelines.yaml:6: repositories.acme/webapp.pipelines.test.on.{event}: has both "
        f"{include} and {ignore}; use one (a '!' pattern in {include} excludes)"
    )


@pytest.mark.parametrize("key", ["branches", "tags_ignore", "paths"])
def test_a_list_of_only_negations_is_refused_as_it_can_never_match(key):
    text = MINIMAL.replace("          push:\n", f"          push: {{{key}: ['!main', '!dev']}}\n")
    (problem,) = problems(text)
    assert problem == (
        f"pipelines.yaml:6: repositories.acme/webapp.pipelines.test.on.push.{key}: lists only "
        "'!' patterns, so it can never match: a '!' pattern only takes back what a pattern "
        "before it matched (start with '**' for everything else)"
    )


def test_a_backslash_in_a_pattern_makes_the_next_character_literal():
    text = MINIMAL.replace(
        "          push:\n", "          push: {branches: ['\\!important', 'releases/\\*\\*']}\n"
    )
    branches = parse(text).repositories[0].pipelines[0].push.branches
    assert [glob.negated for glob in branches] == [False, False]
    assert [glob.matches("!important") for glob in branches] == [True, False]
    assert [glob.matches("releases/1") for glob in branches] == [False, False]


def test_problems_are_listed_in_line_order_whatever_order_they_are_found_in():
    reported = problems("""\
        repositories:
          acme/webapp:
            report_status: true
            pipelines:
              test:
                timeout: forever
                on: {push: {branches: "[x"}}
                steps: [{name: a, run: b}]
        """)
    assert [problem.split(":")[1] for problem in reported] == ["3", "6", "7"]


UNSET = MINIMAL.replace(
    "    pipelines:\n",
    "    secret_env: MISSING_SECRET\n    token_env: MISSING_TOKEN\n    pipelines:\n",
).replace("        on:\n", "        secrets: [MISSING_DEPLOY_KEY]\n        on:\n")


def test_with_warn_of_unset_a_variable_not_set_is_a_warning_not_a_problem():
    config = parse_pipelines(UNSET, "pipelines.yaml", {}, warn_of_unset=True)
    unset = "which is not set in hookrunner's environment"
    assert [str(warning) for warning in config.warnings] == [
        f"pipelines.yaml:3: repositories.acme/webapp.secret_env: names MISSING_SECRET, {unset}",
        f"pipelines.yaml:4: repositories.acme/webapp.token_env: names MISSING_TOKEN, {unset}",
        "pipelines.yaml:7: repositories.acme/webapp.pipelines.test.secrets: "
        f"names MISSING_DEPLOY_KEY, {unset}",
    ]
    assert config.repository("acme/webapp").secret == ""
    assert len(problems(UNSET, {})) == 3
    assert parse(MINIMAL).warnings == ()


def test_with_warn_of_unset_a_name_that_is_no_variable_name_is_still_a_problem():
    text = MINIMAL.replace("    pipelines:\n", "    token_env: github-token\n    pipelines:\n")
    with pytest.raises(PipelinesError, match="'github-token' is not an environment variable"):
        parse_pipelines(text, "pipelines.yaml", {}, warn_of_unset=True)


def entries(*blocks: str) -> str:
    return "repositories:\n" + "".join(blocks)


def entry(pattern: str, *pipelines: str, settings: str = "") -> str:
    lines = [f"  '{pattern}':\n", *(f"    {line}\n" for line in settings.splitlines() if line)]
    lines.append("    pipelines:\n")
    lines += [f"      {pipeline}\n" for pipeline in pipelines]
    return "".join(lines)


def lint(name: str = "lint", extra: str = "") -> str:
    return f"{name}: {{on: push, steps: [{{name: s, run: make {name}}}]{extra}}}"


def test_entries_that_cannot_share_a_repository_may_name_pipelines_alike():
    config = parse(entries(entry("acme/*", lint()), entry("other/*", lint())))
    assert [entry.pattern for entry in config.repositories] == ["acme/*", "other/*"]


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [("acme/*", "acme/shop", "acme/shop"), ("acme/*", "*/shop", "acme/shop")],
)
def test_a_pipeline_two_entries_covering_one_repository_define_is_refused_naming_both_lines(
    first, second, shared
):
    text = entries(entry(first, lint()), entry(second, lint("test"), lint()))
    assert problems(text) == [
        f"pipelines.yaml:8: repositories.{second}.pipelines.lint: is also a pipeline of "
        f"{first} (line 4), and both entries cover {shared}: the pipelines a repository gets "
        "need names of their own"
    ]


def test_a_pipeline_may_need_one_of_an_entry_covering_every_repository_its_entry_covers():
    text = entries(entry("acme/*", lint()), entry("acme/shop", lint("test", ", needs: lint")))
    (test,) = parse(text).repositories[1].pipelines
    assert test.needs == ("lint",)


def test_a_pipeline_may_not_need_one_some_of_its_repositories_lack():
    text = entries(entry("acme/*", lint(extra=", needs: test")), entry("acme/shop", lint("test")))
    assert problems(text) == [
        "pipelines.yaml:4: repositories.acme/*.pipelines.lint.needs: names 'test', a pipeline "
        "of acme/shop, which does not cover every repository acme/* covers"
    ]


def test_needs_going_round_in_a_circle_across_entries_are_refused():
    text = entries(
        entry("acme/*", lint(extra=", needs: test")),
        entry("acme/shop", lint("test", ", needs: lint")),
    )
    found = problems(text)
    assert found[1] == (
        "pipelines.yaml:7: repositories.acme/shop.pipelines.test.needs: "
        "goes round in a circle back to this pipeline"
    )


def test_report_status_may_use_the_token_env_of_an_entry_covering_its_repositories():
    text = entries(
        entry("acme/*", lint(), settings="token_env: DEPLOY_TOKEN"),
        entry("acme/shop", lint("test"), settings="report_status: true"),
    )
    (test,) = parse(text).repository("acme/shop").pipelines[1:]
    assert (test.report_status, test.token_env) == (True, "DEPLOY_TOKEN")


def test_a_more_specific_entrys_token_env_does_not_reach_a_wildcards_other_repositories():
    text = entries(
        entry("acme/*", lint(), settings="report_status: true"),
        entry("acme/shop", lint("test"), settings="token_env: DEPLOY_TOKEN"),
    )
    assert problems(text) == [
        "pipelines.yaml:3: repositories.acme/*: "
        "report_status needs token_env: the variable holding a GitHub token"
    ]


def test_a_pattern_longer_than_any_repository_name_needs_is_refused():
    pattern = "acme/" + "a?" * 100
    text = entries(entry("acme/*", lint()), entry(pattern, lint()))
    assert problems(text) == [
        f"pipelines.yaml:5: repositories.{pattern}: "
        "is longer than 200 characters, which no owner/name needs"
    ]


def test_each_later_definer_of_a_name_is_reported_once_naming_the_first():
    text = entries(
        entry("acme/shop", lint()),
        entry("acme/api", lint()),
        entry("ACME/Shop", lint()),
        entry("acme/*", lint()),
    )
    assert [problem.split(": is also a pipeline of ")[1][:19] for problem in problems(text)] == [
        "acme/shop (line 4),",
        "acme/shop (line 4),",
    ]
