import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from runner.models import Delivery, Run, WorkerSeen
from tests.rows import make_delivery, make_run, seen_worker

pytestmark = pytest.mark.django_db

INDEX_URL = reverse("admin:index")


@pytest.fixture
def delivery() -> Delivery:
    return make_delivery(delivery_id="d1")


@pytest.fixture
def run_of(delivery):
    """Create a run of `pipeline` in `repository`; the newest run is the one created last."""

    def create(repository: str, pipeline: str, status: str = "queued", **times) -> Run:
        return make_run(delivery, repository, pipeline, status, **times)

    return create


def last_runs_table(response) -> str:
    html = response.content.decode()
    start = html.index('<div class="module" id="last-runs">')
    return html[start : html.index("</table>", start)]


def run_url(run: Run) -> str:
    return reverse("admin:runner_run_change", args=[run.pk])


def test_index_shows_the_newest_run_of_each_pipeline(admin_client, run_of):
    old = run_of("acme/webapp", "test", "failed")
    newest = run_of("acme/webapp", "test", "succeeded")
    deploy = run_of("acme/webapp", "deploy", "running")
    other = run_of("acme/api", "test", "timed_out")
    table = last_runs_table(admin_client.get(INDEX_URL))
    assert f'<a href="{run_url(old)}">test</a>' not in table
    rows = [table.index(f'<td><a href="{run_url(run)}">') for run in (other, deploy, newest)]
    assert rows == sorted(rows), "sorted by repository, then pipeline"
    assert f'<td>acme/webapp</td>\n        <td><a href="{run_url(newest)}">test</a></td>' in table


def squares(table: str) -> list[str]:
    """The squares of the table's strips, each as its link's title."""
    return re.findall(r'<a class="hr-square hr-status-\w+" href="[^"]+" title="([^"]+)"', table)


def test_index_shows_each_pipelines_last_20_runs_as_squares_oldest_first(admin_client, run_of):
    now = timezone.now()
    runs = [
        run_of(
            "acme/webapp", "test", "failed", started_at=now, finished_at=now + timedelta(seconds=n)
        )
        for n in range(25)
    ]
    deploy = run_of("acme/webapp", "deploy", "running", started_at=now)
    table = last_runs_table(admin_client.get(INDEX_URL))
    assert squares(table)[0] == f"#{deploy.pk} running"
    test_squares = squares(table)[1:]
    assert test_squares == [f"#{run.pk} failed, {n}.0s" for n, run in enumerate(runs)][-20:]
    assert f'href="{run_url(runs[-1])}" title=' in table


def test_index_shows_the_median_time_of_the_last_20_successful_runs_with_a_trend(
    admin_client, run_of
):
    now = timezone.now()
    for seconds in [100] * 5 + [10, 30, 20] + [90] * 17:
        run_of(
            "acme/webapp",
            "test",
            "succeeded",
            started_at=now,
            finished_at=now + timedelta(seconds=seconds),
        )
    run_of("acme/webapp", "test", "failed", started_at=now, finished_at=now + timedelta(hours=1))
    table = last_runs_table(admin_client.get(INDEX_URL))
    assert '<td class="hr-median">1m 30s <svg class="hr-trend"' in table
    assert "<title>the last 20 successful runs, oldest first: from 10.0s to 1m 30s</title>" in table


def test_index_shows_no_median_before_a_pipeline_first_succeeds(admin_client, run_of):
    run_of("acme/webapp", "test", "failed")
    table = last_runs_table(admin_client.get(INDEX_URL))
    assert '<td class="hr-median">\u2013</td>' in table


def test_index_shows_each_status_as_a_coloured_word(admin_client, run_of):
    run_of("acme/webapp", "test", "succeeded")
    run_of("acme/webapp", "lint", "timed_out")
    table = last_runs_table(admin_client.get(INDEX_URL))
    assert '<span class="hr-status hr-status-succeeded">✓ succeeded</span>' in table
    assert '<span class="hr-status hr-status-timed_out">⧗ timed out</span>' in table


def test_index_says_when_each_run_last_moved(admin_client, run_of):
    now = timezone.now()
    run_of("acme/webapp", "a", "succeeded", started_at=now, finished_at=now - timedelta(hours=2))
    run_of("acme/webapp", "b", "running", started_at=now - timedelta(minutes=5))
    run_of("acme/webapp", "c", "queued")
    table = last_runs_table(admin_client.get(INDEX_URL))
    assert "finished <time" in table
    assert ">2\xa0hours ago</time>" in table
    assert "started <time" in table
    assert ">5\xa0minutes ago</time>" in table
    assert "queued <time" in table


@pytest.mark.parametrize(("seconds", "said"), [(0, "just now"), (42, "42 seconds ago")])
def test_index_says_a_run_that_just_ended_ended_just_now_or_seconds_ago(
    admin_client, run_of, seconds, said
):
    ended = timezone.now() - timedelta(seconds=seconds)
    run_of("acme/webapp", "a", "succeeded", started_at=ended, finished_at=ended)
    table = last_runs_table(admin_client.get(INDEX_URL))
    assert f">{said}</time>" in table
    assert "0\xa0minutes" not in table


def test_index_queries_do_not_grow_with_the_number_of_runs(
    admin_client, run_of, django_assert_max_num_queries
):
    run_of("acme/webapp", "test")
    with CaptureQueriesContext(connection) as one_run:
        admin_client.get(INDEX_URL)
    for number in range(60 * 21):
        run_of(f"acme/repo-{number % 6}", f"pipeline-{number % 5}", "succeeded")
    with django_assert_max_num_queries(len(one_run)):
        table = last_runs_table(admin_client.get(INDEX_URL))
    assert table.count("<tr>") == 1 + 1 + 30, "heading, acme/webapp test, 6 x 5 pipelines"


def test_index_without_runs_shows_no_table(admin_client):
    response = admin_client.get(INDEX_URL)
    assert response.status_code == 200
    assert b'id="last-runs"' not in response.content


def test_staff_who_may_not_view_runs_do_not_see_them(client, django_user_model, run_of):
    run_of("acme/webapp", "test")
    user = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_delivery"))
    client.force_login(user)
    response = client.get(INDEX_URL)
    assert response.status_code == 200
    assert b'id="last-runs"' not in response.content
    user.user_permissions.add(Permission.objects.get(codename="view_run"))
    client.force_login(django_user_model.objects.get(pk=user.pk))
    assert b'id="last-runs"' in client.get(INDEX_URL).content


def test_anonymous_users_are_sent_to_log_in(client, run_of):
    run_of("acme/webapp", "test")
    response = client.get(INDEX_URL)
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_index_keeps_the_broken_pipelines_warning_above_the_last_runs(
    admin_client, run_of, settings, tmp_path
):
    run_of("acme/webapp", "test")
    settings.PIPELINES_FILE = tmp_path / "pipelines.yaml"
    settings.PIPELINES_FILE.write_text("repositories: {}\n")
    html = admin_client.get(INDEX_URL).content.decode()
    warning = html.index("has errors, so the last valid configuration stays in force")
    assert warning < html.index('id="last-runs"')
    assert "repositories: lists no repository" in html


def test_every_admin_page_says_when_a_live_worker_cannot_sandbox_steps(admin_client, client):
    problem = "bubblewrap is not installed (bwrap was not found): apt-get install bubblewrap"
    seen_worker("box:1", "*")
    WorkerSeen.objects.update(sandbox_problem=problem)
    for page in ("admin:index", "admin:runner_run_changelist"):
        html = admin_client.get(reverse(page)).text
        assert (
            f"A worker cannot sandbox steps, so sandboxed pipelines fail at start: {problem}"
            in html
        )
    assert problem not in client.get(reverse("admin:login")).text


def test_no_sandbox_warning_while_every_live_worker_can_sandbox(admin_client):
    seen_worker("box:1", "*")
    assert "cannot sandbox steps" not in admin_client.get(reverse("admin:index")).text


def test_the_site_root_sends_people_to_admin(client):
    response = client.get("/")
    assert (response.status_code, response.url) == (302, INDEX_URL)


def test_admin_pages_have_no_view_site_link_as_admin_is_the_whole_site(admin_client):
    html = admin_client.get(INDEX_URL).content.decode()
    assert "View site" not in html
    assert "Log out" in html
