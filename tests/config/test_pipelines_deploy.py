"""pipelines.yaml's deployment keys: environment, approval with approvers and expires, and
on: manual with its inputs."""

import textwrap

import pytest
from django.core.management import call_command

from runner.config.definition import RunDefinition
from runner.config.pipelines import Approval, Environment, Input, ManualTrigger
from runner.config.pipelines_file import PipelinesError, parse_pipelines

HEAD = """\
repositories:
  acme/shop:
    pipelines:
      deploy:
"""
STEPS = "        steps: [{name: go, run: ./deploy}]\n"


def pipeline_of(keys: str):
    text = HEAD + textwrap.indent(textwrap.dedent(keys), " " * 8) + STEPS
    return parse_pipelines(text, "pipelines.yaml", {}).repositories[0].pipelines[0]


def problems(keys: str) -> list[str]:
    text = HEAD + textwrap.indent(textwrap.dedent(keys), " " * 8) + STEPS
    with pytest.raises(PipelinesError) as raised:
        parse_pipelines(text, "pipelines.yaml", {})
    return [
        f"{problem.line}: {problem.where}: {problem.message}" for problem in raised.value.problems
    ]


def test_an_environment_is_a_name_or_a_name_and_its_url():
    assert pipeline_of("on: push\nenvironment: production\n").environment == Environment(
        "production"
    )
    named = pipeline_of("on: push\nenvironment: {name: staging, url: https://s.example.com}\n")
    assert named.environment == Environment("staging", "https://s.example.com")
    assert pipeline_of("on: push\n").environment is None


def test_a_bad_environment_is_refused_on_its_line():
    assert problems("on: push\nenvironment: 'a/b'\n") == [
        "6: repositories.acme/shop.pipelines.deploy.environment: 'a/b' is not an environment "
        "name (letters, digits, space _ . -)"
    ]
    assert problems("on: push\nenvironment: {name: prod, url: ftp://x}\n") == [
        "6: repositories.acme/shop.pipelines.deploy.environment.url: must start with https://"
    ]


def test_approval_required_waits_24_hours_for_anyone_allowed_unless_told_otherwise():
    assert pipeline_of("on: push\napproval: required\n").approval == Approval("", 24 * 3600)
    told = pipeline_of("on: push\napproval: required\napprovers: deployers\nexpires: 2h\n")
    assert told.approval == Approval("deployers", 7200)
    assert pipeline_of("on: push\n").approval is None


def test_approvers_and_expires_need_approval_required():
    assert problems("on: push\napproval: yes\napprovers: ops\nexpires: 1h\n") == [
        "6: repositories.acme/shop.pipelines.deploy.approval: must be required (or left out)",
    ]
    assert problems("on: push\napprovers: ops\nexpires: 1h\n") == [
        "6: repositories.acme/shop.pipelines.deploy.approvers: needs approval: required",
        "7: repositories.acme/shop.pipelines.deploy.expires: needs approval: required",
    ]


def test_on_manual_alone_beside_push_or_with_inputs():
    alone = pipeline_of("on: manual\n")
    assert (alone.manual, alone.push, alone.pull_request) == (ManualTrigger(), None, None)
    assert pipeline_of("on: [push, manual]\n").manual == ManualTrigger()
    with_inputs = pipeline_of("""\
        on:
          manual:
            inputs:
              level: {description: how loud, default: info, choices: [info, debug]}
              dry_run: {default: true}
              note: {required: false}
              ticket:
        """)
    assert with_inputs.manual.inputs == (
        Input("level", "how loud", "info", ("info", "debug")),
        Input("dry_run", "", "true"),
        Input("note", "", ""),
        Input("ticket"),
    )
    assert with_inputs.manual.inputs[0].variable == "INPUT_LEVEL"


def test_bad_inputs_and_github_actions_spellings_are_answered():
    found = problems("""\
        on:
          workflow_dispatch:
        """)
    assert found == [
        "6: repositories.acme/shop.pipelines.deploy.on: unknown event 'workflow_dispatch': "
        "hookrunner calls it manual (on: manual, with inputs as on GitHub)"
    ]
    found = problems("""\
        on:
          manual:
            inputs:
              my-level: {default: a, options: [a, b]}
              colour: {default: red, choices: [blue]}
        """)
    assert found == [
        "8: repositories.acme/shop.pipelines.deploy.on.manual.inputs.my-level: is not a name "
        "for INPUT_<NAME> (letters, digits, _)",
        "8: repositories.acme/shop.pipelines.deploy.on.manual.inputs.my-level: unknown key "
        "'options': hookrunner calls them choices",
        "9: repositories.acme/shop.pipelines.deploy.on.manual.inputs.colour.default: "
        "is not one of choices",
    ]


def test_a_runs_definition_keeps_environment_approval_and_inputs():
    pipeline = pipeline_of("""\
        on: {manual: {inputs: {level: {default: info}}}}
        environment: {name: production, url: https://shop.example.com}
        approval: required
        approvers: deployers
        """)
    definition = RunDefinition.of(pipeline, from_fork=False)
    assert RunDefinition.from_json(definition.to_json()) == definition
    assert (definition.environment_name, definition.approval.approvers) == (
        "production", "deployers",
    )  # fmt: skip
    assert definition.inputs == (Input("level", "", "info"),)


def test_a_definition_stored_before_deployments_reads_as_none():
    old = RunDefinition.from_json({"version": 1, "name": "deploy"})
    assert (old.environment, old.approval, old.inputs) == (None, None, ())


def test_check_pipelines_says_where_a_pipeline_deploys_and_who_approves(tmp_path, capsys):
    path = tmp_path / "pipelines.yaml"
    path.write_text(
        HEAD + "        on: [push, manual]\n        environment: production\n"
        "        approval: required\n        approvers: deployers\n" + STEPS
    )
    call_command("check_pipelines", str(path))
    assert (
        "deploy: push (any ref) and manual; 1 step; timeout 3600s; queue default; "
        "environment production; approval by deployers, expires after 86400s"
    ) in capsys.readouterr().out
