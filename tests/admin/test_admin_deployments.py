"""Deployments in admin: the environments page, approving and rejecting, locks, deploying
an earlier commit again and the Run pipeline form, and who may do each."""

import pytest
from django.urls import reverse

from runner.admin import manual
from runner.models import Decision, EnvironmentLock, Run
from runner.runs import lifecycle
from tests.admin.deploying import configure, deployment, person, waiting_for_approval
from tests.rows import Origin

pytestmark = pytest.mark.django_db

ENVIRONMENTS = reverse("admin:runner_environments")
START = reverse("admin:run_start")
LOCK = reverse("admin:runner_environment_lock")
UNLOCK = reverse("admin:runner_environment_unlock")
PRODUCTION = {"repository": "acme/webapp", "environment": "production"}


@pytest.fixture(autouse=True)
def pipelines(settings, tmp_path):
    configure(settings, tmp_path)


def decide_url(run: Run) -> str:
    return reverse("admin:run_decide", args=[run.pk])


def page_of(run: Run) -> str:
    return reverse("admin:runner_run_change", args=[run.pk])


def again_url(run: Run) -> str:
    return reverse("admin:run_deploy_again", args=[run.pk])


def test_environments_page_shows_live_in_progress_lock_and_history(admin_client):
    earlier = deployment("a" * 40, "Add the shop")
    live = deployment("b" * 40, "Fix the login\n\nIt broke on Safari.")
    waiting = waiting_for_approval()
    lifecycle.lock("acme/webapp", "production", "bob", "release freeze")
    html = admin_client.get(ENVIRONMENTS).content.decode()
    assert "acme/webapp · production" in html
    assert '<a href="https://webapp.example.com">' in html
    live_cell = html[html.index('class="hr-live"') : html.index('class="hr-in-progress"')]
    assert f"run #{live.pk}" in live_cell
    assert ">bbbbbbb</a> Fix the login" in live_cell
    assert "push by octocat" in live_cell
    in_progress = html[html.index('class="hr-in-progress"') : html.index('class="hr-lock"')]
    assert f"run #{waiting.pk}" in in_progress
    assert "waiting for approval" in in_progress
    assert "May approve it: members of the group deployers." in in_progress
    assert "locked by bob" in html and "release freeze" in html
    assert html.count("Deploy this again") == 1
    assert again_url(earlier) in html and again_url(live) not in html


def test_without_permissions_no_buttons_and_every_action_refused(client):
    earlier, _ = deployment("a" * 40), deployment("b" * 40)
    waiting = waiting_for_approval()
    client.force_login(person("viewer", "approve_run"))
    for url in (ENVIRONMENTS, page_of(waiting)):
        html = client.get(url).content.decode()
        assert "May approve it" in html or "Waiting for approval by" in html
        for button in ("Approve", "Reject", "Deploy this again", ">Lock<", "Run pipeline"):
            assert button not in html, (url, button)
    refused = [
        client.post(decide_url(waiting), {"decision": "approve"}),
        client.post(LOCK, {**PRODUCTION, "reason": "freeze"}),
        client.post(UNLOCK, PRODUCTION),
        client.get(again_url(earlier)),
        client.post(again_url(earlier)),
        client.get(START),
    ]
    assert [response.status_code for response in refused] == [403] * len(refused)
    assert Run.objects.get(pk=waiting.pk).waiting_for == Run.WaitingFor.APPROVAL
    assert not EnvironmentLock.objects.exists()
    assert Run.objects.count() == 3


def test_a_member_of_the_approvers_group_approves(client):
    waiting = waiting_for_approval()
    client.force_login(person("carol", groups=("deployers",)))
    html = client.get(page_of(waiting)).content.decode()
    assert "Waiting for approval by members of the group deployers" in html
    assert 'value="approve"' in html
    response = client.post(
        decide_url(waiting), {"decision": "approve", "reason": "looks good", "next": ENVIRONMENTS}
    )
    assert response.status_code == 302 and response["Location"] == ENVIRONMENTS
    run = Run.objects.get(pk=waiting.pk)
    assert run.waiting_for != Run.WaitingFor.APPROVAL
    (decision,) = Decision.objects.filter(run=run)
    assert (decision.approved, decision.by, decision.reason) == (True, "carol", "looks good")
    html = client.get(page_of(run)).content.decode()
    assert "approved by carol at" in html and ": looks good" in html
    assert 'value="approve"' not in html


def test_rejecting_with_a_reason_cancels_the_run(admin_client):
    waiting = waiting_for_approval()
    response = admin_client.post(
        decide_url(waiting), {"decision": "reject", "reason": "not on a Friday"}
    )
    assert response["Location"] == page_of(waiting)
    run = Run.objects.get(pk=waiting.pk)
    assert run.status == Run.Status.CANCELLED
    assert run.detail == "rejected by admin: not on a Friday"
    html = admin_client.get(page_of(run)).content.decode()
    assert "rejected by admin at" in html and "not on a Friday" in html


def test_deciding_a_run_no_longer_waiting_says_so(admin_client):
    waiting = waiting_for_approval()
    lifecycle.approve(waiting, "bob")
    response = admin_client.post(decide_url(waiting), {"decision": "reject"}, follow=True)
    assert f"Run {waiting.pk} is queued, not waiting for approval" in response.content.decode()
    assert Decision.objects.filter(run=waiting).count() == 1


def test_next_leading_off_the_site_is_ignored(admin_client):
    waiting = waiting_for_approval()
    response = admin_client.post(
        decide_url(waiting), {"decision": "approve", "next": "https://evil.example/"}
    )
    assert response["Location"] == page_of(waiting)


def test_locking_needs_a_reason_and_unlocking_releases_the_runs_it_held(client):
    deployment("a" * 40)
    client.force_login(person("ops", "lock_environment"))
    assert ">Lock</button>" in client.get(ENVIRONMENTS).content.decode()
    response = client.post(LOCK, PRODUCTION, follow=True)
    assert "Nothing was changed: reason must be given." in response.content.decode()
    assert not EnvironmentLock.objects.exists()
    response = client.post(LOCK, {**PRODUCTION, "reason": "release freeze"}, follow=True)
    html = response.content.decode()
    assert "In acme/webapp, production is locked by ops: release freeze" in html
    assert ">Unlock</button>" in html
    held = waiting_for_approval()
    lifecycle.approve(held, "admin")
    assert Run.objects.get(pk=held.pk).waiting_for == Run.WaitingFor.LOCK
    response = client.post(UNLOCK, PRODUCTION, follow=True)
    assert f"Production of acme/webapp: unlocked; runs #{held.pk} go on" in (
        response.content.decode()
    )
    assert not EnvironmentLock.objects.exists()
    assert Run.objects.get(pk=held.pk).waiting_for != Run.WaitingFor.LOCK


def test_deploy_again_asks_then_starts_a_rollback_of_what_is_live(client):
    earlier = deployment("a" * 40, "Add the shop")
    live = deployment("b" * 40, "Break the shop")
    client.force_login(person("dora", "deploy"))
    html = client.get(again_url(earlier)).content.decode()
    assert "aaaaaaa" in html and "bbbbbbb" in html and "waits for approval first" in html
    response = client.post(again_url(earlier), {"reason": "the shop is broken"})
    again = Run.objects.latest("pk")
    assert response["Location"] == page_of(again)
    assert (again.sha, again.rollback_of_id, again.requested_by, again.reason) == (
        "a" * 40, live.pk, "dora", "the shop is broken",
    )  # fmt: skip
    html = client.get(page_of(again), follow=True).content.decode()
    assert f"run #{live.pk}</a> (the shop is broken), asked by dora" in html
    history = client.get(ENVIRONMENTS).content.decode()
    assert f"rollback of run {live.pk}: the shop is broken" in history


def test_run_page_shows_the_environment_inputs_and_who_started_it(admin_client):
    run = waiting_for_approval(by="erin")
    html = admin_client.get(page_of(run)).content.decode()
    assert '<a href="https://webapp.example.com">' in html
    assert "<code>level</code> = <code>verbose</code>" in html
    assert "<th>started by</th><td>erin</td>" in html


def test_index_lists_runs_waiting_for_approval_with_buttons_for_who_may_decide(client):
    waiting = waiting_for_approval()
    index = reverse("admin:index")
    client.force_login(person("viewer"))
    html = client.get(index).content.decode()
    assert "Waiting for approval" in html and f"#{waiting.pk}</a> acme/webapp deploy" in html
    assert 'value="approve"' not in html
    client.force_login(person("carol", groups=("deployers",)))
    assert 'value="approve"' in client.get(index).content.decode()


def test_run_pipeline_lists_manual_pipelines_and_starts_one_at_a_resolved_ref(
    client, settings, tmp_path
):
    origin = Origin(tmp_path / "origin" / "acme" / "webapp")
    sha = origin.commit("one\n", "first")
    configure(settings, tmp_path, clone_url=str(origin.path))
    client.force_login(person("dora", "deploy"))
    listed = client.get(START).content.decode()
    assert "?repository=acme/webapp&amp;pipeline=deploy" in listed
    assert "pipeline=test" not in listed
    form_url = f"{START}?repository=acme/webapp&pipeline=deploy"
    form = client.get(form_url).content.decode()
    assert '<option value="normal" selected>normal</option>' in form
    refused = client.post(form_url, {"ref": "no-such-branch", "input_level": "normal"})
    assert "no-such-branch" in refused.content.decode() and Run.objects.count() == 0
    response = client.post(form_url, {"ref": "main", "input_level": "verbose"})
    run = Run.objects.get()
    assert response["Location"] == page_of(run)
    assert (run.sha, run.ref, run.inputs) == (
        sha, "refs/heads/main", {"level": "verbose", "note": ""},
    )  # fmt: skip
    assert run.requested_by == "dora" and run.waiting_for == Run.WaitingFor.APPROVAL


def test_run_pipeline_gives_up_on_a_ref_git_cannot_fetch_in_time(
    client, settings, tmp_path, silent_remote, monkeypatch
):
    monkeypatch.setattr(manual, "RESOLVE_SECONDS", 1)
    configure(settings, tmp_path, clone_url=silent_remote)
    client.force_login(person("dora", "deploy"))
    form_url = f"{START}?repository=acme/webapp&pipeline=deploy"
    refused = client.post(form_url, {"ref": "main", "input_level": "normal"})
    assert f"git took longer than 1s on {silent_remote}: try again" in refused.content.decode()
    assert Run.objects.count() == 0


def test_run_pipeline_refuses_a_pipeline_without_on_manual(admin_client):
    response = admin_client.get(f"{START}?repository=acme/webapp&pipeline=test", follow=True)
    assert "Pipeline test of acme/webapp cannot be started by hand" in response.content.decode()
