"""History at a glance, in a real headless Chromium (tests/browser.py): the runs list says
why a run failed and fits a 1440 px screen, the index shows each pipeline's last runs as
squares in their statuses' colours, and they and the deliveries list refresh themselves
while a run they show is queued or running.

The database is used before the browser starts and after it closes; while it is open,
only from another thread (tests/browser.py says why)."""

import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from runner.models import Delivery, Run
from tests.browser import PASSWORD, chromium_page, log_in, page_problems
from tests.rows import make_delivery, make_run

pytestmark = pytest.mark.django_db(transaction=True)

WIDE_SCREEN = {"width": 1440, "height": 900}
LONG_TITLE = "Fix flaky session test " + "by freezing the clock everywhere it is read " * 3
PUSH = {
    "head_commit": {"message": f"{LONG_TITLE}\n\nUse a frozen clock."},
    "repository": {"html_url": "https://github.com/acme/webapp"},
}


def in_another_thread(change) -> None:
    """Change the database while the browser is open, as a worker would."""

    def work() -> None:
        try:
            change()
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def ended(run: Run, status: str, detail: str) -> None:
    Run.objects.filter(pk=run.pk).update(status=status, detail=detail, finished_at=timezone.now())


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_superuser("admin", "admin@example.com", PASSWORD)


def test_the_runs_list_says_why_runs_failed_and_follows_a_running_one(
    live_server, admin_user, tmp_path
):
    delivery = make_delivery(payload=PUSH)
    branch = "refs/heads/feature/session-expiry-with-a-frozen-clock-in-every-test"
    fields = {"sha": "fdf0d9b48aca90fb0019f29d9611992528323408", "ref": branch}
    reason = "step test failed with exit code 3"
    failed = make_run(delivery, status="failed", detail=reason, **fields)
    running = make_run(delivery, pipeline="deploy", status="running", **fields)

    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        page.set_viewport_size(WIDE_SCREEN)
        log_in(page, live_server.url)
        page.goto(f"{live_server.url}/admin/runner/run/")
        row = page.locator("#result_list tr", has_text=f"#{failed.pk}")
        expect(row.locator(".hr-reason")).to_have_text(reason)
        expect(row.locator(".hr-message")).to_have_text(LONG_TITLE.strip())
        # Admin scrolls a table too wide for the screen inside its own box.
        overflow = page.evaluate(
            "(box => box.scrollWidth - box.clientWidth)(document.querySelector('.results'))"
        )
        assert overflow <= 0, f"the list is {overflow} px wider than a 1440 px screen shows"

        in_another_thread(lambda: ended(running, "timed_out", "step deploy timed out after 60s"))
        later = page.locator("#result_list tr", has_text=f"#{running.pk}")
        expect(later.locator(".hr-reason")).to_have_text("step deploy timed out after 60s")
        assert problems == [], "the page's script or a request failed"


def test_the_index_shows_each_pipelines_last_runs_as_squares_that_link_to_them(
    live_server, admin_user, tmp_path
):
    now = timezone.now()
    runs = [
        make_run(status=status, started_at=now, finished_at=now + timedelta(seconds=seconds))
        for seconds, status in enumerate(["succeeded", "failed"] * 11, start=10)
    ]
    queued = make_run(pipeline="lint")

    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        log_in(page, live_server.url)
        page.goto(f"{live_server.url}/admin/")
        test_row = page.locator("#last-runs tr", has_text="test")
        squares = test_row.locator(".hr-square")
        expect(squares).to_have_count(20)
        expect(squares.first).to_have_attribute("title", f"#{runs[2].pk} succeeded, 12.0s")
        expect(squares.last).to_have_attribute("title", f"#{runs[-1].pk} failed, 31.0s")
        assert squares.last.bounding_box()["width"] > 0, "the squares are drawn"
        expect(test_row.locator(".hr-median svg.hr-trend")).to_be_visible()
        expect(test_row.locator(".hr-median")).to_contain_text("20.0s")

        in_another_thread(lambda: ended(queued, "error", "no worker takes queue default"))
        lint_row = page.locator("#last-runs tr", has_text="lint")
        expect(lint_row.locator(".hr-square")).to_have_attribute("title", f"#{queued.pk} error")

        with page.expect_navigation():
            squares.last.click()
        expect(page).to_have_url(f"{live_server.url}/admin/runner/run/{runs[-1].pk}/change/")
        assert problems == [], "the page's script or a request failed"


def test_the_deliveries_list_follows_a_delivery_being_processed_and_its_running_run(
    live_server, admin_user, tmp_path
):
    processing = make_delivery(repository="acme/processing", status="received", payload=PUSH)
    running = make_run(make_delivery(repository="acme/webapp", payload=PUSH), status="running")

    def both_end() -> None:
        Delivery.objects.filter(pk=processing.pk).update(status="ignored")
        ended(running, "succeeded", "")

    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        log_in(page, live_server.url)
        page.goto(f"{live_server.url}/admin/runner/delivery/")
        status = page.locator("#result_list tr", has_text="acme/processing")
        expect(status.locator(".field-status_shown")).to_have_text("received")
        run = page.locator(f'#result_list a[title^="run {running.pk} "]')
        expect(run).to_have_attribute("title", f"run {running.pk} running")

        in_another_thread(both_end)
        expect(status.locator(".field-status_shown")).to_have_text("ignored")
        expect(run).to_have_attribute("title", f"run {running.pk} succeeded")
        assert problems == [], "the page's script or a request failed"


def test_the_index_squares_take_the_colour_of_their_status(live_server, admin_user, tmp_path):
    succeeded, failed = make_run(status="succeeded"), make_run(status="failed")

    with chromium_page(tmp_path) as page:
        log_in(page, live_server.url)
        page.goto(f"{live_server.url}/admin/")
        squares = page.locator("#last-runs .hr-square")
        expect(squares).to_have_count(2)
        colour = "element => getComputedStyle(element).backgroundColor"
        assert squares.nth(0).evaluate(colour) == "rgb(46, 125, 50)", f"#{succeeded.pk} green"
        assert squares.nth(1).evaluate(colour) == "rgb(198, 40, 40)", f"#{failed.pk} red"
