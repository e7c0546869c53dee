"""Every status a run or a step can have has its look; only ended run statuses report a
final commit state to GitHub."""

from runner.models import Run, Step
from runner.models.statuses import LOOKS, look_of


def test_every_status_of_runs_and_steps_has_a_symbol():
    statuses = {*Run.Status.values, *Step.Status.values}
    assert statuses <= set(LOOKS)
    assert all(look_of(status).symbol for status in statuses)


def test_exactly_the_ended_run_statuses_report_a_final_state():
    reporting = {status for status in Run.Status.values if look_of(status).github_state}
    assert reporting == set(Run.ENDED)
    assert {look_of(s).github_state for s in reporting} <= {"success", "failure", "error"}


def test_an_unknown_status_has_no_look():
    assert look_of("exploded") == look_of("")
    assert look_of("exploded").badge_color == ""
