import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from runner.config.definition import RunDefinition
from runner.models import Delivery, Run
from tests.conftest import TEST_PIPELINES, SignedDelivery, load_fixture

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:runner_delivery_changelist")


def run_url(run: Run) -> str:
    return reverse("admin:runner_run_change", args=[run.pk])


def stored(
    delivery_id: str, received_at: str = "2026-11-27T08:00:00Z", action: str = "", **changes
) -> Delivery:
    """A push to acme/webapp refs/heads/main as the receiver stores it, nothing started;
    `changes` replace parts of its payload."""
    payload = {**load_fixture("push__branch"), **changes}
    return Delivery.objects.create(
        delivery_id=delivery_id,
        event="push",
        action=action,
        repository=payload["repository"]["full_name"],
        ref=payload["ref"],
        received_at=received_at,
        payload=payload,
        status=Delivery.Status.IGNORED,
    )


def started(delivery: Delivery, pipeline: str, status: str = Run.Status.QUEUED) -> Run:
    return Run.objects.create(
        delivery=delivery,
        repository=delivery.repository,
        pipeline=pipeline,
        event=delivery.event,
        definition=RunDefinition(),
        task_id=f"{delivery.delivery_id}-{pipeline}",
        status=status,
    )


@pytest.fixture
def staff(client, django_user_model):
    """Log a staff user in with the given runner permissions (codenames); the client."""

    def login(*codenames: str):
        user = django_user_model.objects.create_user("staff", password="x", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        client.force_login(user)
        return client

    return login


@pytest.fixture
def fixed_pipelines(settings, tmp_path):
    """A pipelines file in which `test` now also runs on pushes to gh-pages."""
    path = tmp_path / "pipelines.yaml"
    path.write_text(TEST_PIPELINES.read_text().replace("branches_ignore: gh-pages", ""))
    settings.PIPELINES_FILE = path
    return path


def replay(client, *deliveries: Delivery):
    return client.post(
        LIST_URL,
        {"action": "replay", "index": 0, "_selected_action": [d.pk for d in deliveries]},
        follow=True,
    )


# The list


def test_delivery_list_links_each_run_a_delivery_started_with_its_status(
    admin_client, post_delivery
):
    post_delivery(SignedDelivery.of_fixture("push__branch"))
    test, deploy = Run.objects.order_by("pk")
    Run.objects.filter(pk=test.pk).update(status=Run.Status.SUCCEEDED)
    response = admin_client.get(LIST_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "2 runs: " in html
    assert f'<a href="{run_url(test)}" title="run {test.pk} succeeded">test ✓</a>' in html
    assert (
        f'<a href="{run_url(deploy)}" title="run {deploy.pk} queued" class="hr-unended">'
        "deploy ◷</a>"
    ) in html


def test_delivery_list_shows_event_action_repository_status_and_time(admin_client):
    stored("d1", action="opened")
    html = admin_client.get(LIST_URL).content.decode()
    for column in ("received_at", "event", "action", "repository", "status_shown", "runs_started"):
        assert f"column-{column}" in html
    assert '<td class="field-action">opened</td>' in html
    assert '<td class="field-repository">acme/webapp</td>' in html
    assert '<td class="field-status_shown">ignored</td>' in html


def test_delivery_list_marks_what_is_still_going_on_for_it_to_refresh_itself(admin_client):
    processing = stored("d1")
    Delivery.objects.filter(pk=processing.pk).update(status=Delivery.Status.RECEIVED)
    delivery = stored("d2")
    running = started(delivery, "test", Run.Status.RUNNING)
    ended = started(delivery, "deploy", Run.Status.FAILED)
    html = admin_client.get(LIST_URL).content.decode()
    assert '<td class="field-status_shown"><span class="hr-unended">received</span></td>' in html
    assert '<td class="field-status_shown">ignored</td>' in html
    assert f'title="run {running.pk} running" class="hr-unended"' in html
    assert f'title="run {ended.pk} failed">' in html
    assert "runner/history.js" in html


def test_delivery_page_does_not_refresh_itself_which_would_fold_the_payload(admin_client):
    delivery = stored("d1")
    started(delivery, "test", Run.Status.RUNNING)
    html = admin_client.get(reverse("admin:runner_delivery_change", args=[delivery.pk]))
    assert "runner/history.js" not in html.content.decode()


def test_delivery_list_shows_newest_first(admin_client):
    stored("older", received_at="2026-11-27T08:00:00Z")
    stored("newest", received_at="2026-11-27T10:00:00Z")
    stored("middle", received_at="2026-11-27T09:00:00Z")
    response = admin_client.get(LIST_URL)
    assert [d.delivery_id for d in response.context["cl"].result_list] == [
        "newest",
        "middle",
        "older",
    ]


def test_delivery_list_queries_do_not_grow_with_the_number_of_rows(
    admin_client, django_assert_max_num_queries
):
    started(stored("first"), "test")
    with CaptureQueriesContext(connection) as one_row:
        admin_client.get(LIST_URL)
    for number in range(30):
        delivery = stored(f"more-{number}")
        started(delivery, "test", Run.Status.FAILED)
        started(delivery, "deploy", Run.Status.SUCCEEDED)
    with django_assert_max_num_queries(len(one_row)):
        response = admin_client.get(LIST_URL)
    assert response.content.decode().count("2 runs: ") == 30


# A delivery's page


def test_delivery_page_shows_the_payload_indented_and_escaped(admin_client):
    delivery = stored("d1", head_commit={"message": "fix </pre><script>alert(1)</script>"})
    url = reverse("admin:runner_delivery_change", args=[delivery.pk])
    html = admin_client.get(url).content.decode()
    assert '<pre class="payload"' in html
    assert "\n  &quot;ref&quot;: &quot;refs/heads/main&quot;,\n" in html
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html


def test_delivery_page_lists_the_runs_it_started_with_their_status_badges(admin_client):
    delivery = stored("d1")
    run = started(delivery, "deploy", Run.Status.FAILED)
    response = admin_client.get(reverse("admin:runner_delivery_change", args=[delivery.pk]))
    html = response.content.decode()
    assert run_url(run) in html
    assert '<span class="hr-status hr-status-failed">✗ failed</span>' in html


def test_delivery_page_shows_its_runs_first_and_the_payload_after_them_folded(admin_client):
    delivery = stored("d1")
    run = started(delivery, "deploy")
    url = reverse("admin:runner_delivery_change", args=[delivery.pk])
    html = admin_client.get(url).content.decode()
    runs_at = html.index(run_url(run))
    assert runs_at < html.index('<div class="form-row field-event">'), "above the delivery"
    payload_at = html.index('<pre class="payload"')
    assert runs_at < payload_at
    folded_at = html.rindex("<details", 0, payload_at)
    assert html[folded_at:].startswith("<details><summary>"), "closed until unfolded"
    assert html.index("</details>", folded_at) > payload_at
    assert ">Payload</h2>" in html[folded_at:payload_at]


def test_delivery_page_stays_read_only(admin_client):
    delivery = stored("d1")
    url = reverse("admin:runner_delivery_change", args=[delivery.pk])
    admin_client.post(url, {"status": "failed", "payload": "{}"})
    delivery.refresh_from_db()
    assert (delivery.status, delivery.payload["ref"]) == ("ignored", "refs/heads/main")
    assert b'name="status"' not in admin_client.get(url).content


# Replaying


def test_replay_queues_what_the_current_pipelines_start_and_says_so(admin_client, fixed_pipelines):
    delivery = stored("gh", ref="refs/heads/gh-pages")
    assert b'<option value="replay">' in admin_client.get(LIST_URL).content
    response = replay(admin_client, delivery)
    (run,) = Run.objects.all()
    assert (run.pipeline, run.ref, run.delivery_id) == ("test", "refs/heads/gh-pages", delivery.pk)
    assert f"Delivery gh: started 1 run: test (run {run.pk})" in response.content.decode()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.detail) == ("accepted", "replayed: started 1 run(s): test")


def test_replay_with_nothing_matching_says_why_and_queues_nothing(admin_client):
    delivery = stored("gh", ref="refs/heads/gh-pages")
    response = replay(admin_client, delivery)
    assert not Run.objects.exists()
    assert (
        "Delivery gh: nothing started: test: does not start: branch gh-pages matches "
        "branches_ignore; deploy: does not start:"
    ) in response.content.decode()
    assert Delivery.objects.get().status == "ignored"


def test_replay_says_what_happened_to_each_selected_delivery(admin_client, fixed_pipelines):
    pages = stored("pages", ref="refs/heads/gh-pages")
    other = stored("other", repository={"full_name": "acme/other"})
    repeat = Delivery.objects.create(
        delivery_id="pages", event="push", payload={}, status="duplicate", original=pages
    )
    html = replay(admin_client, pages, other, repeat).content.decode()
    assert "Delivery pages: started 1 run: test" in html
    assert "Delivery other: nothing started: no pipelines for acme/other" in html
    assert "Delivery pages: not replayed: it only records that GitHub sent it again" in html
    assert Run.objects.count() == 1


def test_replay_without_any_valid_pipelines_file_says_so(admin_client, settings, tmp_path):
    settings.PIPELINES_FILE = tmp_path / "never-valid.yaml"
    settings.PIPELINES_FILE.write_text("repositories: {}\n")
    html = replay(admin_client, stored("gh")).content.decode()
    assert "Nothing replayed:" in html
    assert "lists no repository" in html
    assert not Run.objects.exists()


def test_staff_with_the_replay_permission_can_replay(staff, fixed_pipelines):
    client = staff("view_delivery", "replay_delivery")
    delivery = stored("gh", ref="refs/heads/gh-pages")
    assert b'<option value="replay">' in client.get(LIST_URL).content
    assert b"Delivery gh: started 1 run: test" in replay(client, delivery).content
    assert Run.objects.count() == 1


def test_staff_without_the_replay_permission_neither_sees_nor_runs_it(staff, fixed_pipelines):
    client = staff("view_delivery")
    delivery = stored("gh", ref="refs/heads/gh-pages")
    response = client.get(LIST_URL)
    assert response.status_code == 200
    assert b'value="replay"' not in response.content
    replay(client, delivery)
    assert not Run.objects.exists()


def test_anonymous_users_are_sent_to_log_in(client, fixed_pipelines):
    delivery = stored("gh", ref="refs/heads/gh-pages")
    page = reverse("admin:runner_delivery_change", args=[delivery.pk])
    action = {"action": "replay", "index": 0, "_selected_action": [delivery.pk]}
    for response in (client.get(LIST_URL), client.get(page), client.post(LIST_URL, action)):
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))
    assert not Run.objects.exists()
