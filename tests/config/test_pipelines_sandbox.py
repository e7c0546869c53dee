"""pipelines.yaml's sandbox: key, and where a pipeline's paths may point."""

import textwrap

import pytest

from runner.config.definition import RunDefinition
from runner.config.pipelines import SANDBOX_OFF, Sandbox
from runner.config.pipelines_file import PipelinesError, parse_pipelines


def pipeline_with(lines: str):
    text = textwrap.dedent("""\
        repositories:
          acme/webapp:
            pipelines:
              deploy:
                on: {push: null}
                steps: [{name: s, run: make deploy}]
        """) + textwrap.indent(textwrap.dedent(lines), " " * 8)
    return parse_pipelines(text, "pipelines.yaml", {}).repositories[0].pipelines[0]


def problems_with(lines: str) -> list[str]:
    with pytest.raises(PipelinesError) as raised:
        pipeline_with(lines)
    return [str(problem) for problem in raised.value.problems]


def test_every_pipeline_is_sandboxed_with_the_network_unless_it_says_otherwise():
    assert pipeline_with("").sandbox == Sandbox(enabled=True, network=True)


@pytest.mark.parametrize("off", ["off", "false", "'off'"])
def test_sandbox_off_must_be_written_out(off):
    assert pipeline_with(f"sandbox: {off}\n").sandbox == SANDBOX_OFF


def test_a_pipeline_names_what_it_may_write_and_read_and_turns_off_the_network(tmp_path):
    www, keys = tmp_path / "www", tmp_path / "keys"
    www.mkdir()
    keys.mkdir()
    sandbox = pipeline_with(f"""\
        sandbox:
          writable: [{www}]
          readonly: {keys}
          network: false
        """).sandbox
    assert sandbox == Sandbox(writable=(str(www),), readonly=(str(keys),), network=False)


def test_paths_must_be_absolute_and_exist(tmp_path):
    assert problems_with(f"sandbox: {{writable: [srv/www, {tmp_path / 'gone'}]}}\n") == [
        "pipelines.yaml:7: repositories.acme/webapp.pipelines.deploy.sandbox.writable: "
        "'srv/www' must be an absolute path",
        "pipelines.yaml:7: repositories.acme/webapp.pipelines.deploy.sandbox.writable: "
        f"{tmp_path / 'gone'} does not exist on this machine",
    ]


def test_no_path_may_show_hookrunners_own_folders(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    (settings.DATA_DIR / "workspaces").mkdir(parents=True)
    found = problems_with(f"sandbox: {{readonly: [{settings.DATA_DIR / 'workspaces'}]}}\n")
    assert found == [
        "pipelines.yaml:7: repositories.acme/webapp.pipelines.deploy.sandbox.readonly: "
        f"{settings.DATA_DIR / 'workspaces'} is inside {settings.DATA_DIR}, "
        "which is hookrunner's own"
    ]


def test_a_symlink_into_hookrunners_folders_is_refused_too(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    link = tmp_path / "innocent"
    link.symlink_to(settings.DATA_DIR)
    assert "which is hookrunner's own" in problems_with(f"sandbox: {{writable: {link}}}\n")[0]


def test_the_configuration_folder_cannot_be_a_workdir(settings, tmp_path):
    settings.PIPELINES_FILE = tmp_path / "etc" / "pipelines.yaml"
    settings.PIPELINES_FILE.parent.mkdir()
    workdir = settings.PIPELINES_FILE.parent
    assert problems_with(f"workdir: {workdir}\n") == [
        f"pipelines.yaml:7: repositories.acme/webapp.pipelines.deploy.workdir: {workdir} "
        f"is inside {workdir}, which is hookrunner's own"
    ]


@pytest.mark.parametrize(
    "value, message",
    [
        ("maybe", "must be off, on, or a mapping of what it allows"),
        ("{network: 0}", "network: must be true or false, not a number"),
        ("{hidden: [/srv]}", "unknown key 'hidden' (allowed: writable, readonly, network)"),
    ],
)
def test_a_sandbox_it_cannot_read_is_a_problem(value, message):
    assert message in problems_with(f"sandbox: {value}\n")[0]


def test_a_runs_definition_keeps_its_sandbox_and_older_runs_read_as_sandboxed(tmp_path):
    sandbox = Sandbox(writable=(str(tmp_path),), network=False)
    definition = RunDefinition(name="deploy", sandbox=sandbox)
    assert RunDefinition.from_json(definition.to_json()).sandbox == sandbox
    stored_before_sandboxes = {k: v for k, v in definition.to_json().items() if k != "sandbox"}
    assert RunDefinition.from_json(stored_before_sandboxes).sandbox == Sandbox()
