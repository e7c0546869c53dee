import pytest
from django.urls import reverse

from runner.config.store import pipelines_store
from runner.models import Delivery, DroppedRejections, LogChunk, RejectedRequest, Run, Step
from tests.conftest import TEST_PIPELINES, SignedDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(post_delivery):
    post_delivery(SignedDelivery.of_fixture("push__branch"))
    post_delivery(SignedDelivery.of_fixture("push__branch", secret="stale"))
    DroppedRejections.objects.create(minute="2026-11-27T08:00:00Z", count=7)


def test_delivery_list_shows_each_delivery_and_its_outcome(admin_client, delivered):
    response = admin_client.get(reverse("admin:runner_delivery_changelist"))
    assert response.status_code == 200
    assert b"refs/heads/main" in response.content
    assert b"started 2 runs: test, deploy" in response.content


def test_delivery_page_shows_its_payload(admin_client, delivered):
    delivery = Delivery.objects.get()
    response = admin_client.get(reverse("admin:runner_delivery_change", args=[delivery.pk]))
    assert response.status_code == 200
    assert b"fdf0d9b48aca90fb0019f29d9611992528323408" in response.content


def test_rejected_request_list_says_why(admin_client, delivered):
    response = admin_client.get(reverse("admin:runner_rejectedrequest_changelist"))
    assert response.status_code == 200
    assert b"does not match" in response.content
    rejected = RejectedRequest.objects.get()
    page = admin_client.get(reverse("admin:runner_rejectedrequest_change", args=[rejected.pk]))
    assert rejected.body_sha256.encode() in page.content


def test_dropped_rejections_are_visible(admin_client, delivered):
    response = admin_client.get(reverse("admin:runner_droppedrejections_changelist"))
    assert b'<td class="field-count">7</td>' in response.content


def test_history_cannot_be_edited_or_added(admin_client, delivered):
    assert admin_client.get(reverse("admin:runner_delivery_add")).status_code == 403
    delivery = Delivery.objects.get()
    url = reverse("admin:runner_delivery_change", args=[delivery.pk])
    admin_client.post(url, {"status": "failed"})
    delivery.refresh_from_db()
    assert delivery.status == "accepted"


def test_run_list_shows_queued_runs(admin_client, delivered):
    response = admin_client.get(reverse("admin:runner_run_changelist"))
    assert response.status_code == 200
    assert b"deploy" in response.content
    assert b"fdf0d9b48aca" in response.content


def test_run_page_shows_the_pipeline_as_it_was(admin_client, delivered):
    run = Run.objects.get(pipeline="deploy")
    response = admin_client.get(reverse("admin:runner_run_change", args=[run.pk]))
    assert response.status_code == 200
    assert b"make deploy" in response.content


def test_delivery_page_lists_its_runs(admin_client, delivered):
    delivery = Delivery.objects.get()
    response = admin_client.get(reverse("admin:runner_delivery_change", args=[delivery.pk]))
    assert reverse("admin:runner_run_change", args=[Run.objects.first().pk]).encode() in (
        response.content
    )


def test_every_admin_page_shows_a_broken_pipelines_file(admin_client, settings, tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_text(TEST_PIPELINES.read_text())
    settings.PIPELINES_FILE = path
    assert b"has errors" not in admin_client.get(reverse("admin:index")).content
    path.write_text("repositories: {}\n")
    # A page never waits for a reload; the one after it has ended shows its verdict.
    pipelines_store().newest()
    response = admin_client.get(reverse("admin:index"))
    assert b"has errors, so the last valid configuration stays in force" in response.content
    assert b"repositories: lists no repository" in response.content


def test_run_page_shows_each_steps_output(admin_client, delivered):
    run = Run.objects.get(pipeline="test")
    step = Step.objects.create(run=run, index=0, name="greet", status="succeeded", exit_code=0)
    LogChunk.objects.create(step=step, seq=0, text="hello <b>world</b>\n")
    response = admin_client.get(reverse("admin:runner_run_change", args=[run.pk]))
    assert b"greet" in response.content
    assert b"hello &lt;b&gt;world&lt;/b&gt;" in response.content


def test_admin_can_cancel_a_queued_run_and_run_it_again(admin_client, delivered):
    run = Run.objects.get(pipeline="deploy")
    url = reverse("admin:runner_run_changelist")
    response = admin_client.post(
        url, {"action": "cancel", "index": 0, "_selected_action": [run.pk]}, follow=True
    )
    assert f"Run {run.pk}: cancelled".encode() in response.content
    assert Run.objects.get(pk=run.pk).status == "cancelled"
    response = admin_client.post(
        url, {"action": "run_again", "index": 0, "_selected_action": [run.pk]}, follow=True
    )
    again = Run.objects.get(rerun_of=run)
    link = reverse("admin:runner_run_change", args=[again.pk])
    assert f'Run {run.pk}: queued again as <a href="{link}">run {again.pk}</a>' in response.text
    assert again.status == "queued"
