"""A run's page draws only what matters of its output, numbered, and serves the rest by
ranges of lines: the failing step open at its end, the others folded."""

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
