"""`needs`: a pipeline waits for others of its repository to succeed for the same sha,
starts when they have, and is skipped, saying why, when one of them does not."""

import pytest

from runner.models import Run
from runner.runs import lifecycle
from tests.conftest import SignedDelivery, executed

pytestmark = pytest.mark.django_db

TEST_THEN_DEPLOY = """\
    test:
      on: {{push: {test_on}}}
      steps: [{{name: test, run: '{test}'}}]
    deploy:
      on: {{push: null}}
      needs: [test]
      steps: [{{name: deploy, run: echo deployed}}]
    """


@pytest.fixture
def pushed(pipelines, post_delivery):
    """Push with the given pipelines; the runs it made, by pipeline name."""

    def push(pipelines_yaml: str, fixture: str = "push__branch") -> dict[str, Run]:
        pipelines(pipelines_yaml)
        ids = post_delivery(SignedDelivery.of_fixture(fixture)).json()["runs"]
        return {run.pipeline: run for run in Run.objects.filter(pk__in=ids)}

    return push


def fresh(run: Run) -> Run:
    run.refresh_from_db()
    return run


def test_a_run_waits_without_a_task_until_what_it_needs_succeeds(pushed):
    runs = pushed(TEST_THEN_DEPLOY.format(test="true", test_on="null"))
    deploy = runs["deploy"]
    assert (deploy.status, deploy.task_id) == ("waiting", None)
    assert executed(runs["test"].pk).status == "succeeded"
    deploy = fresh(deploy)
    assert deploy.status == "queued"
    assert deploy.task_id is not None
    assert executed(deploy.pk).status == "succeeded"


def test_a_failure_of_what_it_needs_skips_it_saying_why(pushed):
    runs = pushed(TEST_THEN_DEPLOY.format(test="exit 1", test_on="null"))
    test = executed(runs["test"].pk)
    deploy = fresh(runs["deploy"])
    assert (deploy.status, deploy.detail) == (
        "skipped",
        f"skipped: it needs test, whose run {test.pk} failed",
    )
    assert deploy.finished_at is not None


def test_cancelling_what_it_needs_skips_it(pushed):
    runs = pushed(TEST_THEN_DEPLOY.format(test="true", test_on="null"))
    lifecycle.cancel(runs["test"])
    assert fresh(runs["deploy"]).status == "skipped"


def test_needing_a_pipeline_that_does_not_run_for_the_commit_skips_at_once(pushed):
    runs = pushed(TEST_THEN_DEPLOY.format(test="true", test_on="{branches: [release]}"))
    assert list(runs) == ["deploy"]
    assert (runs["deploy"].status, runs["deploy"].detail) == (
        "skipped",
        "skipped: it needs test, which has no run for this commit",
    )


def test_what_already_succeeded_for_the_sha_lets_it_start_at_once(pushed):
    first = pushed(TEST_THEN_DEPLOY.format(test="true", test_on="null"))
    executed(first["test"].pk)
    again = pushed(TEST_THEN_DEPLOY.format(test="true", test_on="{branches: [release]}"))
    assert again["deploy"].status == "queued"


def test_a_chain_of_needs_is_skipped_link_by_link(pushed):
    runs = pushed("""\
        build:
          on: {push: null}
          steps: [{name: build, run: exit 2}]
        test:
          on: {push: null}
          needs: [build]
          steps: [{name: test, run: 'true'}]
        deploy:
          on: {push: null}
          needs: [test, build]
          steps: [{name: deploy, run: 'true'}]
        """)
    executed(runs["build"].pk)
    assert fresh(runs["test"]).status == "skipped"
    assert fresh(runs["deploy"]).status == "skipped"


def test_a_waiting_run_can_be_cancelled(pushed):
    deploy = pushed(TEST_THEN_DEPLOY.format(test="true", test_on="null"))["deploy"]
    assert lifecycle.cancel(deploy) == "cancelled"
    assert fresh(deploy).status == "cancelled"
