"""End to end in a real headless Chromium (Debian's, driven by Playwright): a person logs
in, watches a running run's output grow without reloading, cancels it, and sees it end.

`make test` installs Debian's chromium first when /usr/bin/chromium is missing (`make
browser`); CHROMIUM=/path/to/it names another. Without one this test fails: it is never
skipped, so a CI without a browser cannot pass by not running it.

Playwright's sync API keeps an asyncio loop running in this thread while a browser is open,
and Django refuses database queries from a thread with a running loop; so the test uses
the database before the browser starts and after it closes, never in between.
"""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from runner.models import Run, Step
from tests.browser import PASSWORD, chromium_page, log_in, page_problems
from tests.conftest import SignedDelivery
from tests.worker_processes import group_members, wait_for, worker_environment

LINE = re.compile(r"^line (\d+)$", re.MULTILINE)


def lines_shown(page: Page, step_id: int) -> list[int]:
    text = page.locator(f'.hr-output[data-step="{step_id}"]').text_content() or ""
    return [int(number) for number in LINE.findall(text)]


@pytest.mark.django_db(transaction=True)
def test_a_person_watches_a_run_live_and_cancels_it(
    live_server, pipelines, post_delivery, worker_processes, tmp_path
):
    path = pipelines("""\
        ci:
          on: {push: null}
          steps:
            - name: count
              run: |
                for i in $(seq 1 1000); do echo "line $i"; sleep 0.3; done
            - name: after
              run: echo never
        """)
    get_user_model().objects.create_superuser("admin", "admin@example.com", PASSWORD)
    (run_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    worker_processes.start(
        worker_environment(path, tmp_path / "workspaces"),
        log=tmp_path / "worker.log",
    )
    pgid = worker_processes.wait_for_group(run_id, "count")
    # Opened before the steps exist, the page reloads itself once they do: wait for them.
    step = wait_for(
        lambda: Step.objects.filter(run_id=run_id, name="count", pid=pgid).first(), "step stored"
    )

    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        log_in(page, live_server.url)

        page.goto(f"{live_server.url}/admin/runner/run/{run_id}/change/")
        expect(page.locator("#hr-run-status")).to_contain_text("running")
        page.evaluate("window.__marker = 1")
        output = page.locator(f'.hr-output[data-step="{step.pk}"]')
        expect(output).to_contain_text(re.compile(r"^line 3$", re.MULTILINE))
        # Later than anything the server drew: only the page's script can have added it.
        later = max(lines_shown(page, step.pk)) + 5
        expect(output).to_contain_text(re.compile(rf"^line {later}$", re.MULTILINE))
        assert page.evaluate("window.__marker") == 1, "the page reloaded"
        shown = lines_shown(page, step.pk)
        assert shown == sorted(set(shown)), f"lines repeated or out of order: {shown}"

        # The button asks first, posts and comes back to this page: one navigation, then
        # only polls.
        page.once("dialog", lambda dialog: dialog.accept())
        with page.expect_navigation():
            page.get_by_role("button", name="Cancel this run").click()
        message = page.locator(".messagelist")
        expect(message).to_contain_text(f"run {run_id}: asked to stop", ignore_case=True)
        page.evaluate("window.__marker = 2")
        expect(page.locator("#hr-run-status")).to_have_text("⊘ cancelled")
        expect(page.locator("#hr-run-detail")).to_have_text("cancelled during step count")
        section = page.locator(f"#hr-step-{step.pk}")
        expect(section.locator(".hr-step-status")).to_have_text("⊘ cancelled")
        expect(page.locator("#hr-cancel")).to_have_count(0)
        assert page.evaluate("window.__marker") == 2, "the page reloaded after the cancel"
        assert problems == [], "the page's script or a request failed"

    wait_for(lambda: not group_members(pgid), "every process of the step's group exited")
    run = Run.objects.get(pk=run_id)
    assert (run.status, run.detail) == ("cancelled", "cancelled during step count")
    assert [(each.name, each.status) for each in run.steps.all()] == [
        ("count", "cancelled"),
        ("after", "skipped"),
    ]
