"""Deployments in a real headless Chromium: approving and rejecting a waiting run,
deploying an earlier commit again from the environments page, and the Run pipeline form.

The database is used before the browser starts, never while it is open (tests/browser.py).
"""

import re

import pytest
from playwright.sync_api import expect

from runner.models import Decision, Run
from tests.admin.deploying import configure, deployment, waiting_for_approval
from tests.browser import chromium_page, page_problems, use_session
from tests.rows import Origin

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def pipelines(settings, tmp_path):
    configure(settings, tmp_path)


def test_approving_from_the_environments_page(live_server, tmp_path, admin_session):
    run = waiting_for_approval()
    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        use_session(page, live_server.url, admin_session)
        page.goto(f"{live_server.url}/admin/runner/environments/")
        in_progress = page.locator(".hr-in-progress")
        expect(in_progress).to_contain_text("May approve it: members of the group deployers.")
        in_progress.get_by_placeholder("Reason (optional)").fill("ship it")
        with page.expect_navigation():
            in_progress.get_by_role("button", name="Approve").click()
        expect(page.locator(".messagelist")).to_contain_text(f"Run {run.pk}: approved")
        expect(page).to_have_url(re.compile(r"/admin/runner/environments/$"))
    assert problems == []
    (decision,) = Decision.objects.filter(run=run)
    assert (decision.approved, decision.by, decision.reason) == (True, "admin", "ship it")
    assert Run.objects.get(pk=run.pk).waiting_for != Run.WaitingFor.APPROVAL


def test_rejecting_on_the_run_page_with_a_reason(live_server, tmp_path, admin_session):
    run = waiting_for_approval()
    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        use_session(page, live_server.url, admin_session)
        page.goto(f"{live_server.url}/admin/runner/run/{run.pk}/change/")
        expect(page.locator("#hr-approvers")).to_contain_text("members of the group deployers")
        page.get_by_placeholder("Reason (optional)").fill("not on a Friday")
        with page.expect_navigation():
            page.get_by_role("button", name="Reject").click()
        expect(page.locator("#hr-decisions")).to_contain_text("rejected by admin at")
        expect(page.locator("#hr-decisions")).to_contain_text("not on a Friday")
        expect(page.locator("#hr-run-detail")).to_have_text("rejected by admin: not on a Friday")
        expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    assert problems == []
    assert Run.objects.get(pk=run.pk).status == Run.Status.CANCELLED


def test_deploying_an_earlier_commit_again(live_server, tmp_path, admin_session):
    earlier = deployment("a" * 40, "Add the shop")
    live = deployment("b" * 40, "Break the shop")
    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        use_session(page, live_server.url, admin_session)
        page.goto(f"{live_server.url}/admin/runner/environments/")
        row = page.locator(f"#hr-environment-run-{earlier.pk}")
        expect(row).to_contain_text("Add the shop")
        expect(page.locator(f"#hr-environment-run-{live.pk}")).to_contain_text("live")
        with page.expect_navigation():
            row.get_by_role("link", name="Deploy this again").click()
        page.get_by_label("Reason").fill("the shop is broken")
        with page.expect_navigation():
            page.get_by_role("button", name="Deploy it again").click()
        expect(page.locator(".messagelist")).to_contain_text("aaaaaaa deployed again as run")
        expect(page.locator(".hr-facts")).to_contain_text(
            f"run #{live.pk} (the shop is broken), asked by admin"
        )
        expect(page.locator("#hr-approvers")).to_contain_text("members of the group deployers")
    assert problems == []
    again = Run.objects.latest("pk")
    assert (again.sha, again.rollback_of_id, again.reason) == (
        "a" * 40,
        live.pk,
        "the shop is broken",
    )


def test_running_a_pipeline_by_hand(live_server, tmp_path, admin_session, settings):
    origin = Origin(tmp_path / "origin" / "acme" / "webapp")
    sha = origin.commit("one\n", "first")
    configure(settings, tmp_path, clone_url=str(origin.path))
    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        use_session(page, live_server.url, admin_session)
        page.goto(f"{live_server.url}/admin/runner/run/")
        with page.expect_navigation():
            page.get_by_role("link", name="Run pipeline").click()
        with page.expect_navigation():
            page.get_by_role("link", name="deploy", exact=True).click()
        expect(page.get_by_label("level")).to_have_value("normal")
        page.get_by_label("Branch, tag or sha").fill("main")
        page.get_by_label("level").select_option("verbose")
        page.get_by_label("note").fill("first by hand")
        with page.expect_navigation():
            page.get_by_role("button", name="Run deploy").click()
        expect(page.locator(".messagelist")).to_contain_text(" deploy of acme/webapp started")
        inputs = page.locator(".hr-inputs")
        expect(inputs).to_contain_text("level = verbose")
        expect(inputs).to_contain_text("note = first by hand")
        expect(page.locator(".hr-facts")).to_contain_text(sha[:7])
    assert problems == []
    run = Run.objects.get()
    assert (run.sha, run.ref, run.requested_by) == (sha, "refs/heads/main", "admin")
