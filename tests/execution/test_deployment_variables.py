"""What a deployment's steps are told: their manual run's inputs and their environment."""

import os

import pytest

from runner.config.pipelines_file import load_pipelines
from runner.runs import deployments
from runner.runs.deployments import Commit
from tests.conftest import executed, output_of

pytestmark = pytest.mark.django_db

SHA = "fdf0d9b48aca90fb0019f29d9611992528323408"


def test_a_manual_runs_steps_see_its_inputs_and_environment_which_env_cannot_forge(pipelines):
    path = pipelines("""\
        deploy:
          on:
            manual:
              inputs:
                level: {choices: [info, debug], default: info}
                note: {required: false}
          environment: production
          env: {INPUT_LEVEL: forged}
          steps:
            - name: show
              run: echo "$INPUT_LEVEL|$INPUT_NOTE|$HOOKRUNNER_ENVIRONMENT|$GITHUB_EVENT_NAME"
        """)
    config = load_pipelines(path, os.environ)
    pipeline = deployments.manual_pipeline(config, "acme/webapp", "deploy")
    started = deployments.start(
        pipeline, "acme/webapp", Commit(SHA, "refs/heads/main"), {"level": "debug"}, "alice"
    )
    run = executed(started.pk)
    assert run.status == "succeeded", run.detail
    assert output_of(run.steps.get()) == "debug||production|manual\n"


def test_a_push_run_without_an_environment_gets_neither(pipelines, push):
    pipelines("""\
        ci:
          on: {push: null}
          steps:
            - name: show
              run: echo "${HOOKRUNNER_ENVIRONMENT-unset}|${INPUT_LEVEL-unset}"
        """)
    (run,) = push()
    assert output_of(run.steps.get()) == "unset|unset\n"
