"""The run page's buttons in a real headless Chromium: cancelling asks first.

The database is used before the browser starts, never while it is open (tests/browser.py).
"""

import contextlib

import pytest
from playwright.sync_api import Dialog

from runner.models import Run
from tests.browser import chromium_page, page_problems, use_session
from tests.rows import make_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("answer, status", [("dismiss", "queued"), ("accept", "cancelled")])
def test_cancelling_a_run_asks_first(live_server, tmp_path, admin_session, answer, status):
    run = make_run(status="queued")
    asked: list[str] = []

    def reply(dialog: Dialog) -> None:
        asked.append(dialog.message)
        getattr(dialog, answer)()

    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        use_session(page, live_server.url, admin_session)
        page.goto(f"{live_server.url}/admin/runner/run/{run.pk}/change/")
        page.on("dialog", reply)
        with page.expect_navigation() if answer == "accept" else contextlib.nullcontext():
            page.get_by_role("button", name="Cancel this run").click()
        page.wait_for_load_state()
    assert asked == [
        f"Cancel run #{run.pk}? Its running step is stopped and the steps after it are skipped."
    ]
    assert problems == []
    assert Run.objects.get(pk=run.pk).status == status
