"""The Workers page says what each worker takes and what it runs now; the task backend's
own admin is not offered beside hookrunner's."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from tests.rows import make_run, seen_worker

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:runner_workerseen_changelist")


def row_of(html: str, name: str) -> str:
    """The list's row of the worker named `name`."""
    start = html.index(name)
    return html[html.rindex("<tr", 0, start) : html.index("</tr>", start)]


def test_a_worker_taking_every_queue_says_so_in_words(admin_client):
    seen_worker("build-1:100", queues="*")
    html = admin_client.get(LIST_URL).content.decode()
    assert '<td class="field-takes">every queue</td>' in row_of(html, "build-1:100")


def test_a_worker_taking_some_queues_names_them(admin_client):
    seen_worker("build-1:100", queues="default,deploy")
    html = admin_client.get(LIST_URL).content.decode()
    assert '<td class="field-takes">default, deploy</td>' in row_of(html, "build-1:100")


def test_a_worker_running_a_run_links_to_it(admin_client):
    seen_worker("build-1:100")
    run = make_run(pipeline="deploy", status="running", worker="build-1:100")
    make_run(pipeline="test", status="succeeded", worker="build-1:100")
    row = row_of(admin_client.get(LIST_URL).content.decode(), "build-1:100")
    url = reverse("admin:runner_run_change", args=[run.pk])
    assert f'<a href="{url}">#{run.pk} acme/webapp deploy</a>' in row
    assert "test" not in row


def test_a_worker_running_nothing_is_idle(admin_client):
    seen_worker("build-1:100")
    seen_worker("build-2:200")
    make_run(status="running", worker="build-2:200")
    make_run(status="failed", worker="build-1:100")
    html = admin_client.get(LIST_URL).content.decode()
    assert '<td class="field-running">idle</td>' in row_of(html, "build-1:100")
    assert '<td class="field-running">idle</td>' not in row_of(html, "build-2:200")


def test_the_workers_page_queries_do_not_grow_with_the_number_of_workers(
    admin_client, django_assert_max_num_queries
):
    seen_worker("build-0:100")
    make_run(status="running", worker="build-0:100")
    with CaptureQueriesContext(connection) as one_worker:
        admin_client.get(LIST_URL)
    for number in range(1, 20):
        seen_worker(f"build-{number}:100")
        make_run(status="running", worker=f"build-{number}:100")
    with django_assert_max_num_queries(len(one_worker)):
        html = admin_client.get(LIST_URL).content.decode()
    assert "idle" not in html


# The task backend's admin


def test_the_task_backends_results_are_not_in_admin(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "Task Results" not in html
    assert "/admin/django_tasks_database/" not in html
    with pytest.raises(NoReverseMatch):
        reverse("admin:django_tasks_database_dbtaskresult_changelist")
    assert admin_client.get("/admin/django_tasks_database/dbtaskresult/").status_code == 404
