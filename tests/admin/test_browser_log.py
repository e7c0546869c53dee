"""A run's log in a real headless Chromium: line links, folded steps, the failing step
open at its end, terminal colours and progress lines, and a 10 MiB log read in pages.

The database is used before the browser starts, never while it is open (tests/browser.py).
"""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from runner.models import LogChunk, Run, Step
from tests.browser import chromium_page, page_problems, use_session
from tests.rows import make_run

pytestmark = pytest.mark.django_db(transaction=True)

# 10 MiB of numbered lines in chunks of LogChunk.MOST_BYTES, as the worker stores them.
BIG_LINES = 400_000
LINE = re.compile(r"^line (\d+)\b", re.MULTILINE)


def run_with_steps(*steps: tuple[str, str, list[str]]) -> Run:
    run = make_run(status="failed")
    for index, (name, status, chunks) in enumerate(steps):
        step = Step.objects.create(run=run, index=index, name=name, status=status)
        LogChunk.objects.bulk_create(
            LogChunk(step=step, seq=seq, text=text) for seq, text in enumerate(chunks)
        )
    return run


def chunked(text: str) -> list[str]:
    size = LogChunk.MOST_BYTES
    return [text[start : start + size] for start in range(0, len(text), size)]


def open_page(page: Page, server: str, run: Run, anchor: str = "") -> None:
    page.goto(f"{server}/admin/runner/run/{run.pk}/change/{anchor}")


def lines_in(page: Page, number: int) -> list[int]:
    text = page.locator(f"#step-{number}").text_content() or ""
    return [int(found) for found in LINE.findall(text)]


def test_the_failing_step_is_open_at_its_end_and_the_others_folded(
    live_server, admin_session, tmp_path
):
    lines = "".join(f"line {n}\n" for n in range(1, 3001))
    run = run_with_steps(
        ("build", "succeeded", ["built\n"]),
        ("test", "failed", chunked(lines)),
        ("after", "skipped", []),
    )
    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        use_session(page, live_server.url, admin_session)
        open_page(page, live_server.url, run)
        expect(page.locator("#step-2-L3000")).to_be_in_viewport()
        expect(page.locator("#step-1")).to_be_hidden()
        page.get_by_text("1. build").click()
        expect(page.locator("#step-1-L1")).to_have_text("built")
        assert lines_in(page, 2) == list(range(2501, 3001))
        assert problems == []


def test_a_line_link_opens_its_step_at_that_line_highlighted(live_server, admin_session, tmp_path):
    lines = "".join(f"line {n}\n" for n in range(1, 3001))
    run = run_with_steps(("build", "succeeded", chunked(lines)), ("test", "failed", ["no\n"]))
    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        use_session(page, live_server.url, admin_session)
        open_page(page, live_server.url, run, "#step-1-L120")
        line = page.locator("#step-1-L120")
        expect(line).to_be_in_viewport()
        expect(line).to_have_class(re.compile(r"\bhr-target\b"))
        page.locator("#step-1-L130 .hr-ln").click()
        assert page.url.endswith("#step-1-L130")
        expect(page.locator("#step-1-L130")).to_have_class(re.compile(r"\bhr-target\b"))
        expect(line).not_to_have_class(re.compile(r"\bhr-target\b"))
        assert problems == []


def test_a_line_link_fetches_the_steps_last_lines_once_and_keeps_the_earlier_ones(
    live_server, admin_session, tmp_path
):
    # Opening the step fires its toggle as well: a second fetch of its last lines, drawn
    # after the link's earlier ones, used to wipe them.
    lines = "".join(f"line {n}\n" for n in range(1, 3001))
    run = run_with_steps(("build", "succeeded", chunked(lines)), ("test", "failed", ["no\n"]))
    with chromium_page(tmp_path) as page:
        asked = []
        page.on("request", lambda request: asked.append(request.url))
        use_session(page, live_server.url, admin_session)
        open_page(page, live_server.url, run, "#step-1-L120")
        expect(page.locator("#step-1-L120")).to_have_class(re.compile(r"\bhr-target\b"))
        assert lines_in(page, 1) == list(range(100, 3001))
        assert sum("last=3000" in url for url in asked) == 1


def test_quick_clicks_on_earlier_lines_draw_each_line_once(live_server, admin_session, tmp_path):
    lines = "".join(f"line {n}\n" for n in range(1, 3001))
    run = run_with_steps(("test", "failed", chunked(lines)))
    with chromium_page(tmp_path) as page:
        use_session(page, live_server.url, admin_session)
        open_page(page, live_server.url, run)
        expect(page.locator("#step-1-L3000")).to_be_in_viewport()
        earlier = page.get_by_role("button", name="Earlier lines")
        earlier.click()
        earlier.click()
        expect(page.locator("#step-1-L1501")).to_be_attached()
        assert lines_in(page, 1) == list(range(1501, 3001))


def test_terminal_colours_and_progress_lines_show_as_in_a_terminal(
    live_server, admin_session, tmp_path
):
    output = "\x1b[38;5;33mblue\x1b[0m \x1b[48;5;31mteal\x1b[0m\n10%\r50%\r100%\ndone\n"
    run = run_with_steps(("test", "failed", [output]))
    with chromium_page(tmp_path) as page:
        use_session(page, live_server.url, admin_session)
        open_page(page, live_server.url, run)
        blue = page.locator("#step-1-L1 span", has_text="blue")
        expect(blue).to_have_css("color", "rgb(0, 135, 255)")
        teal = page.locator("#step-1-L1 span", has_text="teal")
        expect(teal).to_have_css("background-color", "rgb(0, 135, 175)")
        expect(page.locator("#step-1-L2")).to_have_text("100%")
        expect(page.locator("#step-1-L3")).to_have_text("done")


def test_a_10_mib_log_opens_at_its_end_and_is_read_in_pages(live_server, admin_session, tmp_path):
    text = "".join(f"line {n:07d} of a long log\n" for n in range(1, BIG_LINES + 1))
    assert len(text) >= 10 * 1024 * 1024
    last = text.count("\n")
    run = run_with_steps(("test", "failed", chunked(text)))
    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        use_session(page, live_server.url, admin_session)
        open_page(page, live_server.url, run)
        expect(page.locator(f"#step-1-L{last}")).to_be_in_viewport()
        assert lines_in(page, 1) == list(range(last - 499, last + 1))
        page.get_by_role("button", name="Earlier lines").click()
        expect(page.locator(f"#step-1-L{last - 999}")).to_be_attached()
        assert lines_in(page, 1) == list(range(last - 999, last + 1))
        expect(page.locator(f"#step-1-L{last}")).to_be_attached()
        assert problems == []


def test_a_search_lists_the_lines_found_and_each_opens_its_line(
    live_server, admin_session, tmp_path
):
    lines = "".join(f"line {n}\n" for n in range(1, 3001)).replace("line 42\n", "line 42 <FAIL>\n")
    run = run_with_steps(("test", "failed", chunked(lines)))
    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        use_session(page, live_server.url, admin_session)
        open_page(page, live_server.url, run)
        page.get_by_label("Search step 1's output").fill("<fail>")
        page.get_by_role("button", name="Search").click()
        expect(page.locator(".hr-search-found")).to_have_text("1 line")
        page.locator(".hr-matches").get_by_role("link", name="42").click()
        line = page.locator("#step-1-L42")
        expect(line).to_be_in_viewport()
        expect(line).to_have_text("line 42 <FAIL>")
        expect(line).to_have_class(re.compile(r"\bhr-target\b"))
        assert problems == []


def test_a_steps_raw_log_downloads_from_its_link(live_server, admin_session, tmp_path):
    run = run_with_steps(("test", "failed", ["\x1b[31mred\x1b[0m\n"]))
    with chromium_page(tmp_path) as page:
        use_session(page, live_server.url, admin_session)
        open_page(page, live_server.url, run)
        with page.expect_download() as downloading:
            page.get_by_role("link", name="Raw log", exact=True).click()
        download = downloading.value
        assert download.suggested_filename == f"run-{run.pk}-step-1.log"
        assert Path(download.path()).read_text() == "\x1b[31mred\x1b[0m\n"


def time_shown(page: Page, selector: str) -> str:
    """What a line's time shows, drawn before it by the stylesheet."""
    return page.locator(selector).evaluate(
        "line => getComputedStyle(line, '::before').content.replaceAll('\"', '')"
    )


def test_each_line_shows_its_time_or_the_time_since_its_step_began_as_chosen(
    live_server, admin_session, tmp_path
):
    run = run_with_steps(("test", "failed", ["a\nb\n", "c\n"]))
    began = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    Step.objects.filter(run=run).update(started_at=began)
    for chunk, seconds in zip(LogChunk.objects.filter(step__run=run), (5, 65), strict=True):
        chunk.created_at = began + timedelta(seconds=seconds)
        chunk.save(update_fields=["created_at"])
    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        use_session(page, live_server.url, admin_session)
        open_page(page, live_server.url, run)
        expect(page.locator("#step-1-L3")).to_have_attribute("data-t", "10:01:05")
        assert [time_shown(page, f"#step-1-L{n}") for n in (1, 2, 3)] == [
            "10:00:05", "10:00:05", "10:01:05"
        ]  # fmt: skip
        page.get_by_label("Each line's time").select_option(label="since its step began")
        expect(page.locator("#step-1-L3")).to_have_attribute("data-t", "+1:05")
        page.reload()
        expect(page.locator("#step-1-L1")).to_have_attribute("data-t", "+0:05")
        assert time_shown(page, "#step-1-L3") == "+1:05", "the choice is remembered"
        assert problems == []


def test_a_running_steps_duration_goes_on_while_the_page_is_open(
    live_server, admin_session, tmp_path
):
    run = make_run(status="running", started_at=timezone.now() - timedelta(seconds=65))
    Step.objects.create(run=run, index=0, name="test", status="running", started_at=run.started_at)
    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        use_session(page, live_server.url, admin_session)
        open_page(page, live_server.url, run)
        took = page.locator(".hr-step-took")
        expect(took).to_have_text(re.compile(r"^1m \d\ds$"))
        first = took.text_content()
        expect(took).not_to_have_text(first or "")
        expect(took).to_have_text(re.compile(r"^1m \d\ds$"))
        assert problems == []


GROUPED = (
    "start\n::group::Install\ninstalling a\ninstalling b\n::endgroup::\nafter\n"
    "::error file=app.js,line=3::Broke\n::warning::Careful\n"
)


def test_a_group_is_folded_until_its_line_is_clicked(live_server, admin_session, tmp_path):
    run = run_with_steps(("test", "failed", [GROUPED]))
    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        use_session(page, live_server.url, admin_session)
        open_page(page, live_server.url, run)
        inside = [page.locator(f"#step-1-L{n}") for n in (3, 4, 5)]
        expect(page.locator("#step-1-L6")).to_have_text("after")
        for line in inside:
            expect(line).to_be_hidden()
        page.locator("#step-1-L2").get_by_text("::group::Install").click()
        for line in inside:
            expect(line).to_be_visible()
        page.locator("#step-1-L2").get_by_text("::group::Install").click()
        expect(inside[0]).to_be_hidden()
        assert problems == []


def test_a_link_to_a_line_in_a_folded_group_unfolds_it(live_server, admin_session, tmp_path):
    run = run_with_steps(("test", "failed", [GROUPED]))
    with chromium_page(tmp_path) as page:
        use_session(page, live_server.url, admin_session)
        open_page(page, live_server.url, run, "#step-1-L4")
        expect(page.locator("#step-1-L4")).to_be_in_viewport()
        expect(page.locator("#step-1-L3")).to_be_visible()


def test_errors_and_warnings_stand_out_and_are_listed_with_links(
    live_server, admin_session, tmp_path
):
    run = run_with_steps(("build", "succeeded", ["ok\n"]), ("test", "failed", [GROUPED]))
    with chromium_page(tmp_path) as page:
        problems = page_problems(page)
        use_session(page, live_server.url, admin_session)
        open_page(page, live_server.url, run)
        expect(page.locator("#step-2-L7")).to_have_css("background-color", "rgb(90, 30, 30)")
        expect(page.locator("#step-2-L8")).to_have_css("background-color", "rgb(77, 63, 20)")
        listed = page.locator(".hr-annotations li")
        expect(listed).to_have_text(
            ["error app.js:3: Broke (2. test)", "warning Careful (2. test)"]
        )
        page.locator("#step-2").evaluate("pre => { pre.scrollTop = 0; }")
        listed.get_by_role("link", name="warning").click()
        expect(page.locator("#step-2-L8")).to_be_in_viewport()
        expect(page.locator("#step-2-L8")).to_have_class(re.compile(r"\bhr-target\b"))
        assert problems == []
