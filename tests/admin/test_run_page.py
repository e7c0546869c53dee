"""A run's page draws only what matters of its output, numbered, and serves the rest by
ranges of lines: the failing step open at its end, the others folded."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from runner.models import LogChunk, Run, Step
from tests.rows import make_run

pytestmark = pytest.mark.django_db


def run_with_steps(*steps: tuple[str, str, list[str]]) -> Run:
    """A finished run whose steps (name, status, chunks of output) are stored as given."""
    run = make_run(status="failed")
    for index, (name, status, chunks) in enumerate(steps):
        step = Step.objects.create(run=run, index=index, name=name, status=status)
        for seq, text in enumerate(chunks):
            LogChunk.objects.create(step=step, seq=seq, text=text)
    return run


def numbered(first: int, last: int) -> str:
    return "".join(f"line {n}\n" for n in range(first, last + 1))


def page(client, run: Run) -> str:
    return client.get(reverse("admin:runner_run_change", args=[run.pk])).content.decode()


def lines(client, run: Run, number: int, **query) -> dict:
    return client.get(reverse("admin:run_step_lines", args=[run.pk, number]), query).json()


def test_the_failing_step_opens_at_its_last_lines_and_the_others_are_folded(admin_client):
    run = run_with_steps(
        ("build", "succeeded", ["built\n"]),
        ("test", "failed", [numbered(1, 800), numbered(801, 1000)]),
        ("after", "skipped", []),
    )
    html = page(admin_client, run)
    assert 'id="step-2-L1000"' in html and 'id="step-2-L501"' in html
    assert 'id="step-2-L500"' not in html, "only the last 500 lines are drawn"
    assert html.count('<details class="hr-step"') == 3
    assert html.count(" open>") == 1
    assert 'data-number="2"\n         data-first="501" data-last="1000"' in html
    # A small folded step is drawn with the page, to be unfolded without a request.
    assert 'id="step-1-L1"' in html and "built" in html


def test_each_line_links_to_itself_and_its_text_is_escaped(admin_client):
    run = run_with_steps(("test", "failed", ["<b>bold?</b>\n"]))
    assert (
        '<span class="hr-line" id="step-1-L1"><a class="hr-ln" href="#step-1-L1" data-n="1">'
        "</a>&lt;b&gt;bold?&lt;/b&gt;\n</span>"
    ) in page(admin_client, run)


def test_a_range_of_lines_is_served_across_chunks(admin_client):
    run = run_with_steps(("test", "failed", ["line 1\nline ", "2\nline 3\n", "line 4"]))
    answer = lines(admin_client, run, 1, first=2, last=4)
    assert (answer["first"], answer["last"], answer["total"]) == (2, 4, 4)
    assert [f"line {n}" in answer["html"] for n in (1, 2, 3, 4)] == [False, True, True, True]
    assert 'id="step-1-L2"' in answer["html"]


def test_a_range_past_the_end_is_cut_to_the_lines_there_are(admin_client):
    run = run_with_steps(("test", "failed", [numbered(1, 10)]))
    answer = lines(admin_client, run, 1, first=8, last=99)
    assert (answer["first"], answer["last"], answer["total"]) == (8, 10, 10)


def test_a_range_without_bounds_is_the_latest_lines_the_server_sends_at_once(admin_client):
    run = run_with_steps(("test", "failed", [numbered(1, 6000)]))
    answer = lines(admin_client, run, 1)
    assert (answer["first"], answer["last"]) == (1001, 6000)


def test_lines_of_a_step_keep_their_colours(admin_client):
    run = run_with_steps(("test", "failed", ["\x1b[38;5;33mblue\x1b[0m\n"]))
    assert '<span style="color:#0087ff">blue</span>' in lines(admin_client, run, 1)["html"]


def test_lines_of_an_unknown_step_are_not_found(admin_client):
    run = run_with_steps(("test", "failed", ["x\n"]))
    url = reverse("admin:run_step_lines", args=[run.pk, 2])
    assert admin_client.get(url).status_code == 404


def test_lines_need_the_permission_to_view_runs(client):
    run = run_with_steps(("test", "failed", ["secret-ish\n"]))
    url = reverse("admin:run_step_lines", args=[run.pk, 1])
    assert client.get(url).status_code == 302, "anonymous: sent to log in"
    client.force_login(User.objects.create_user("nobody", password="pw", is_staff=True))
    assert client.get(url).status_code == 403
    user = User.objects.create_user("reader", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_run"))
    client.force_login(user)
    assert client.get(url).status_code == 200


def test_lines_cost_a_bounded_number_of_queries(admin_client, django_assert_max_num_queries):
    run = run_with_steps(("test", "failed", [numbered(1, 2000) for _ in range(30)]))
    with django_assert_max_num_queries(6):
        lines(admin_client, run, 1, first=1, last=10)


def test_the_breadcrumbs_sit_in_the_header_bar_as_on_every_admin_page(admin_client):
    run = make_run(status="queued")
    html = page(admin_client, run)
    assert '<ol class="breadcrumbs">' in html
    assert f'<li aria-current="page">#{run.pk}</li>' in html


def test_running_a_run_again_says_so_with_a_link_to_the_new_run(admin_client):
    run = make_run(status="failed")
    answer = admin_client.post(reverse("admin:run_rerun", args=[run.pk]), follow=True)
    again = Run.objects.get(rerun_of=run)
    link = reverse("admin:runner_run_change", args=[again.pk])
    assert f'Run {run.pk}: queued again as <a href="{link}">run {again.pk}</a>' in answer.text


def download(client, name: str, *args) -> tuple:
    response = client.get(reverse(name, args=args))
    return response, b"".join(response.streaming_content).decode()


def test_a_steps_raw_log_downloads_as_printed_colours_included(admin_client):
    run = run_with_steps(
        ("build", "succeeded", ["built\n"]),
        ("test", "failed", ["\x1b[31mred <b>\x1b[0m\nline ", "2\n"]),
    )
    response, text = download(admin_client, "admin:run_step_raw", run.pk, 2)
    assert response.streaming
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}-step-2.log"'
    assert text == "\x1b[31mred <b>\x1b[0m\nline 2\n"


def test_a_runs_raw_log_is_each_steps_output_under_its_name(admin_client):
    run = run_with_steps(
        ("build", "succeeded", ["built"]),
        ("test", "failed", ["one\n", "two\n"]),
        ("after", "skipped", []),
    )
    response, text = download(admin_client, "admin:run_raw", run.pk)
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}.log"'
    assert text == "## 1. build\nbuilt\n## 2. test\none\ntwo\n## 3. after\n"


def test_raw_logs_are_linked_from_the_run_page(admin_client):
    run = run_with_steps(("test", "failed", ["x\n"]))
    html = page(admin_client, run)
    assert f'href="{reverse("admin:run_raw", args=[run.pk])}"' in html
    assert f'href="{reverse("admin:run_step_raw", args=[run.pk, 1])}"' in html


def test_raw_logs_need_the_permission_to_view_runs(client):
    run = run_with_steps(("test", "failed", ["secret-ish\n"]))
    urls = [
        reverse("admin:run_raw", args=[run.pk]),
        reverse("admin:run_step_raw", args=[run.pk, 1]),
    ]
    client.force_login(User.objects.create_user("nobody", password="pw", is_staff=True))
    assert [client.get(url).status_code for url in urls] == [403, 403]


def test_a_raw_log_costs_a_bounded_number_of_queries(admin_client, django_assert_max_num_queries):
    run = run_with_steps(
        ("build", "succeeded", ["x\n"] * 50), ("test", "failed", [numbered(1, 100)] * 50)
    )
    with django_assert_max_num_queries(6):
        download(admin_client, "admin:run_raw", run.pk)


def search(client, run: Run, number: int, q: str) -> dict:
    return client.get(reverse("admin:run_step_search", args=[run.pk, number]), {"q": q}).json()


def test_a_search_finds_the_lines_holding_its_text_whatever_their_case(admin_client):
    run = run_with_steps(("test", "failed", ["ok\nan Error <x>\nfine\n", "ERROR again\nbye"]))
    answer = search(admin_client, run, 1, "error")
    assert answer["matches"] == [
        {"line": 2, "html": "an Error &lt;x&gt;"},
        {"line": 4, "html": "ERROR again"},
    ]
    assert answer["more"] is False


def test_a_search_finds_a_line_cut_between_two_chunks(admin_client):
    run = run_with_steps(("test", "failed", ["one\nfail", "ed here\nthree\n"]))
    assert search(admin_client, run, 1, "failed")["matches"] == [{"line": 2, "html": "failed here"}]


def test_a_search_lists_at_most_so_many_matches(admin_client):
    run = run_with_steps(("test", "failed", [numbered(1, 3000)]))
    answer = search(admin_client, run, 1, "line")
    assert len(answer["matches"]) == 1000 and answer["more"] is True
    assert answer["matches"][-1]["line"] == 1000


def test_a_search_for_nothing_finds_nothing(admin_client):
    run = run_with_steps(("test", "failed", ["x\n"]))
    assert search(admin_client, run, 1, "")["matches"] == []


def test_a_search_needs_the_permission_to_view_runs(client):
    run = run_with_steps(("test", "failed", ["secret-ish\n"]))
    client.force_login(User.objects.create_user("nobody", password="pw", is_staff=True))
    url = reverse("admin:run_step_search", args=[run.pk, 1])
    assert client.get(url, {"q": "secret"}).status_code == 403


def test_each_step_has_a_search_box(admin_client):
    run = run_with_steps(("build", "succeeded", ["x\n"]), ("test", "failed", ["y\n"]))
    html = page(admin_client, run)
    assert f'data-search-url="{reverse("admin:run_step_search", args=[run.pk, 2])}"' in html


def stored_at(run: Run, *seconds: int) -> list[int]:
    """Dates the run's chunks, in order, `seconds` after 10:00 on 2026-12-01 UTC; their
    times as the page sends them, in milliseconds since the epoch."""
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    for chunk, after in zip(LogChunk.objects.filter(step__run=run), seconds, strict=True):
        chunk.created_at = start + timedelta(seconds=after)
        chunk.save(update_fields=["created_at"])
    return [int((start + timedelta(seconds=after)).timestamp() * 1000) for after in seconds]


def test_a_step_sends_the_first_line_of_each_chunk_and_when_it_was_stored(admin_client):
    run = run_with_steps(("test", "failed", ["a\nb\n", "c\nd", "e\nf\n"]))
    first, second, third = stored_at(run, 0, 5, 65)
    Step.objects.filter(run=run).update(started_at=datetime(2026, 12, 1, 9, 59, tzinfo=UTC))
    html = page(admin_client, run)
    # Line 4 ("de") started in the second chunk, line 5 in the third.
    assert f'data-times="[[1, {first}], [3, {second}], [5, {third}]]"' in html
    assert f'data-started="{first - 60_000}"' in html


def test_a_step_not_started_counts_from_its_first_chunk(admin_client):
    run = run_with_steps(("test", "failed", ["a\n"]))
    (first,) = stored_at(run, 0)
    assert f'data-started="{first}"' in page(admin_client, run)


def test_a_live_chunk_says_when_it_was_stored(admin_client):
    run = run_with_steps(("test", "running", ["a\n"]))
    (first,) = stored_at(run, 3)
    update = admin_client.get(reverse("admin:run_live", args=[run.pk])).json()
    assert [chunk["at"] for chunk in update["chunks"]] == [first]


def test_a_running_step_says_when_it_started_for_its_duration_to_tick(admin_client):
    run = run_with_steps(("build", "succeeded", []), ("test", "running", []))
    started = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    Step.objects.filter(run=run, index=1).update(started_at=started)
    update = admin_client.get(reverse("admin:run_live", args=[run.pk])).json()
    assert [step["running_since"] for step in update["steps"]] == [
        None,
        int(started.timestamp() * 1000),
    ]
    assert abs(update["now"] - time.time() * 1000) < 60_000, "the server's clock, in ms"
    assert f'data-running-since="{int(started.timestamp() * 1000)}"' in page(admin_client, run)


def annotations_in(html: str) -> str:
    return html.split('<ol class="hr-annotations">', 1)[1].split("</ol>", 1)[0]


def test_error_and_warning_lines_are_listed_at_the_top_with_links_to_them(admin_client):
    run = run_with_steps(
        ("build", "succeeded", ["ok\n", "::warning::Deprecated <api>\n"]),
        ("test", "failed", ["a\nb\n::error file=app.js,line=10::Broke \x1b[31mhere\x1b[0m\n"]),
    )
    listed = annotations_in(page(admin_client, run))
    assert listed.count("<li") == 2
    assert '<a href="#step-1-L2">warning</a> Deprecated &lt;api&gt; (1. build)' in listed
    assert '<a href="#step-2-L3">error</a> app.js:10: Broke here (2. test)' in listed


def test_only_lines_that_begin_with_the_command_are_listed(admin_client):
    run = run_with_steps(("test", "failed", ["echo ::error::not one\n::errors::nor this\n"]))
    assert "hr-annotations" not in page(admin_client, run)


def test_the_list_of_errors_and_warnings_is_capped(admin_client):
    errors = "".join(f"::error::failure {n}\n" for n in range(1, 81))
    listed = annotations_in(page(admin_client, run_with_steps(("test", "failed", [errors]))))
    assert listed.count("<li") == 50
    assert "failure 50 (1. test)" in listed and "failure 51" not in listed


def test_the_run_page_costs_a_bounded_number_of_queries_with_errors_listed(
    admin_client, django_assert_max_num_queries
):
    run = run_with_steps(
        ("build", "failed", ["::error::x\n" * 100] * 20),
        ("test", "failed", ["::warning::y\n" * 100] * 20),
    )
    with django_assert_max_num_queries(12):
        page(admin_client, run)
