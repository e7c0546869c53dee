"""Runs in admin: the list, a run's page, its live view, and who may cancel, re-run or
redact. Runs are made by real signed pushes and executed by the worker."""

import json
import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from runner.models import LogChunk, Redaction, Run
from runner.runs import lifecycle
from tests.conftest import SignedDelivery, executed
from tests.rows import make_delivery, make_run

pytestmark = pytest.mark.django_db

LOUD = """\
    ci:
      on: {push: null}
      steps:
        - {name: greet, run: 'printf "\\033[31mred <script>x</script>\\033[0m token=hunter22\\n"'}
        - {name: fail, run: exit 3}
    """


@pytest.fixture
def loud_run(pipelines, push) -> Run:
    pipelines(LOUD)
    (run,) = push()
    return run


def staff_client(client, *permissions: str):
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    codenames = ["view_run", "view_delivery", *permissions]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def page_of(run: Run) -> str:
    return reverse("admin:runner_run_change", args=[run.pk])


LIST = reverse("admin:runner_run_changelist")


def test_run_list_shows_status_in_words_branch_commit_link_and_who_pushed(admin_client, loud_run):
    html = admin_client.get(LIST).content.decode()
    assert '<span class="hr-status hr-status-failed">✗ failed</span>' in html
    assert f'href="https://github.com/acme/webapp/commit/{loud_run.sha}"' in html
    assert f">{loud_run.sha[:7]}</a>" in html
    assert '<td class="field-branch">main</td>' in html
    assert '<td class="field-actor">octocat</td>' in html


ABSENT = object()


@pytest.fixture
def pushed_from(pipelines, post_delivery):
    """Queue a run by a push whose payload gives its repository's web address (its
    `repository.html_url`) as `html_url`, or none at all (ABSENT)."""
    pipelines("""\
        ci:
          on: {push: null}
          steps: [{name: build, run: echo built}]
        """)

    def deliver(html_url) -> Run:
        payload = json.loads(SignedDelivery.of_fixture("push__branch").body)
        del payload["repository"]["html_url"]
        if html_url is not ABSENT:
            payload["repository"]["html_url"] = html_url
        body = json.dumps(payload).encode()
        delivery = SignedDelivery(event="push", body=body, delivery_id=str(uuid.uuid4()))
        (run_id,) = post_delivery(delivery).json()["runs"]
        return Run.objects.get(pk=run_id)

    return deliver


@pytest.mark.parametrize(
    "html_url",
    ["https://ghe.example.com/acme/webapp", "http://git.local:3000/acme/webapp/"],
    ids=["GitHub Enterprise", "another host"],
)
def test_commit_links_go_to_the_repository_its_delivery_names(admin_client, pushed_from, html_url):
    run = pushed_from(html_url)
    link = f"{html_url.rstrip('/')}/commit/{run.sha}"
    for page in (LIST, page_of(run)):
        html = admin_client.get(page).content.decode()
        assert f'<a href="{link}" title="{run.sha}">{run.sha[:7]}</a>' in html


@pytest.mark.parametrize(
    "html_url",
    [ABSENT, None, "javascript:alert(1)", 42],
    ids=["absent", "null", "not http", "not text"],
)
def test_a_commit_without_a_web_address_shows_its_sha_unlinked(admin_client, pushed_from, html_url):
    run = pushed_from(html_url)
    for page in (LIST, page_of(run)):
        html = admin_client.get(page).content.decode()
        assert f'<span title="{run.sha}">{run.sha[:7]}</span>' in html
        assert f"/commit/{run.sha}" not in html


def test_run_list_is_newest_first(admin_client, queued):
    first, second, third = queued(3)
    html = admin_client.get(LIST).content.decode()
    assert (
        html.index(f">#{third.pk}<") < html.index(f">#{second.pk}<") < html.index(f">#{first.pk}<")
    )


def test_run_list_filters_by_status(admin_client, queued):
    kept, cancelled = queued(2)
    lifecycle.cancel(cancelled)
    html = admin_client.get(LIST, {"status__exact": "cancelled"}).content.decode()
    assert f">#{cancelled.pk}<" in html
    assert f">#{kept.pk}<" not in html


def test_run_list_filters_by_pipeline_and_event(admin_client):
    test = make_run(pipeline="test", event="push")
    deploy = make_run(repository="acme/api", pipeline="deploy", event="pull_request")
    html = admin_client.get(LIST).content.decode()
    for choice in ("?pipeline=deploy", "?pipeline=test", "?event=push", "?event=pull_request"):
        assert f'href="{choice}"' in html
    for query, shown, hidden in (("pipeline", deploy, test), ("event", test, deploy)):
        value = getattr(shown, query)
        html = admin_client.get(LIST, {query: value}).content.decode()
        assert (f">#{shown.pk}<" in html, f">#{hidden.pk}<" in html) == (True, False)


@pytest.mark.parametrize(
    "term", ["fdf0d9b", "main", "delivery-id"], ids=["sha start", "branch", "delivery id"]
)
def test_run_list_finds_runs_by_sha_branch_and_delivery_id(admin_client, queued, term):
    (run,) = queued()
    term = run.delivery.delivery_id if term == "delivery-id" else term
    assert f">#{run.pk}<" in admin_client.get(LIST, {"q": term}).content.decode()
    assert f">#{run.pk}<" not in admin_client.get(LIST, {"q": "nothing-like-it"}).content.decode()


def test_run_list_finds_a_pull_request_by_number(admin_client, pipelines, post_delivery):
    pipelines("""\
        ci:
          on: {pull_request: null}
          steps: [{name: build, run: echo built}]
        """)
    (run_id,) = post_delivery(SignedDelivery.of_fixture("pull_request__opened")).json()["runs"]
    run = Run.objects.get(pk=run_id)
    html = admin_client.get(LIST, {"q": str(run.pr_number)}).content.decode()
    assert f">#{run.pk}<" in html
    assert f"PR #{run.pr_number}" in html


def queries_to_get(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_run_list_queries_do_not_grow_with_its_rows(admin_client, queued):
    queued(2)
    few = queries_to_get(admin_client, LIST)
    queued(20)
    assert queries_to_get(admin_client, LIST) == few


def test_run_list_reads_deliveries_only_for_its_rows(admin_client, queued):
    queued(3)
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(LIST).status_code == 200
    # Its commit links' addresses included: not for the count, nor a filter's choices,
    # which read every run.
    (reading,) = [query["sql"] for query in queries if "runner_delivery" in query["sql"]]
    assert reading.startswith('SELECT "runner_run"."id"')


def test_run_list_says_why_a_run_failed_beside_its_commit_message(admin_client, loud_run):
    html = admin_client.get(LIST).content.decode()
    assert '<span class="hr-message">Fix flaky session test</span>' in html
    assert "Use a frozen clock" not in html, "only the message's first line"
    assert '<span class="hr-reason">step fail failed with exit code 3</span>' in html


@pytest.mark.parametrize("status", ["timed_out", "error"])
def test_run_list_says_why_a_run_timed_out_or_errored(admin_client, queued, status):
    (run,) = queued()
    Run.objects.filter(pk=run.pk).update(status=status, detail="why it ended\nmore")
    html = admin_client.get(LIST).content.decode()
    assert '<span class="hr-reason">why it ended</span>' in html


@pytest.mark.parametrize("status", ["succeeded", "cancelled", "queued"])
def test_run_list_gives_no_reason_for_a_run_that_did_not_fail(admin_client, queued, status):
    (run,) = queued()
    Run.objects.filter(pk=run.pk).update(status=status, detail="cancelled by admin")
    assert "hr-reason" not in admin_client.get(LIST).content.decode()


def test_run_list_shows_a_pull_requests_title_as_its_commit_message(
    admin_client, pipelines, post_delivery
):
    pipelines("""\
        ci:
          on: {pull_request: null}
          steps: [{name: build, run: echo built}]
        """)
    post_delivery(SignedDelivery.of_fixture("pull_request__opened"))
    html = admin_client.get(LIST).content.decode()
    assert '<span class="hr-message">Add OAuth login flow</span>' in html


def test_run_list_escapes_commit_messages_and_reasons(admin_client):
    delivery = make_delivery(payload={"head_commit": {"message": "<b>bold</b>\nbody"}})
    make_run(delivery, status="failed", detail="step <i> failed")
    html = admin_client.get(LIST).content.decode()
    assert '<span class="hr-message">&lt;b&gt;bold&lt;/b&gt;</span>' in html
    assert '<span class="hr-reason">step &lt;i&gt; failed</span>' in html


def test_run_list_marks_a_re_run_and_links_the_run_it_repeats(admin_client, queued):
    (first,) = queued()
    again = lifecycle.rerun(first, by="admin")
    html = admin_client.get(LIST).content.decode()
    assert f'<span class="hr-rerun">↻ re-run of <a href="{page_of(first)}">#{first.pk}</a>' in html
    assert html.count("hr-rerun") == 1, f"only run {again.pk} is a re-run"


def test_run_page_shows_each_steps_output_escaped_with_colours(admin_client, loud_run):
    html = admin_client.get(page_of(loud_run)).content.decode()
    assert '<span class="ansi-red">red &lt;script&gt;x&lt;/script&gt;</span>' in html
    assert "<script>x" not in html
    assert "\x1b" not in html
    assert '<span class="hr-status hr-status-failed">✗ failed</span>' in html
    assert "exit 3" in html


def test_run_page_links_its_delivery_and_shows_the_definition_it_ran(admin_client, loud_run):
    html = admin_client.get(page_of(loud_run)).content.decode()
    delivery = reverse("admin:runner_delivery_change", args=[loud_run.delivery_id])
    assert f'href="{delivery}"' in html
    assert "&quot;name&quot;: &quot;greet&quot;" in html


def test_run_page_says_its_run_was_sandboxed_and_what_the_sandbox_added(
    admin_client, pipelines, push
):
    pipelines("""\
        ci:
          on: {push: null}
          sandbox: {network: false}
          steps: [{name: s, run: 'true'}]
        """)
    (run,) = push()
    assert "<th>sandbox</th><td>on; no network</td>" in admin_client.get(page_of(run)).text


def test_run_page_marks_a_run_without_a_sandbox(admin_client, pipelines, push):
    pipelines("""\
        ci:
          on: {push: null}
          sandbox: off
          steps: [{name: s, run: 'true'}]
        """)
    (run,) = push()
    html = admin_client.get(page_of(run)).text
    assert '<strong class="hr-unsandboxed">off: its steps could read hookrunner' in html


def test_run_page_links_the_previous_run_of_the_same_pipeline_and_branch(admin_client, queued):
    first, second = queued(2)
    assert (
        f'href="{page_of(first)}">#{first.pk}</a>'
        in admin_client.get(page_of(second)).content.decode()
    )
    assert "none on this branch" in admin_client.get(page_of(first)).content.decode()


def test_run_page_queries_are_bounded_whatever_the_output(
    admin_client, pipelines, push, django_assert_max_num_queries
):
    pipelines("""\
        ci:
          on: {push: null}
          steps:
            - {name: one, run: 'seq 1 200000'}
            - {name: two, run: 'seq 1 200000'}
        """)
    (run,) = push()
    assert LogChunk.objects.filter(step__run=run).count() > 10
    with django_assert_max_num_queries(12):
        response = admin_client.get(page_of(run))
    html = response.content.decode()
    # The last step opened at its end; the other, too big to draw, is fetched if unfolded.
    assert 'href="#step-2-L200000" data-n="200000"></a>200000\n</span></pre>' in html
    assert "step-2-L199500" not in html
    assert "step-1-L" not in html


def test_live_view_sends_the_output_stored_after_a_position(admin_client, loud_run):
    live = reverse("admin:run_live", args=[loud_run.pk])
    everything = admin_client.get(live, {"after": 0}).json()
    assert everything["finished"] is True
    assert "ansi-red" in "".join(line for chunk in everything["chunks"] for line in chunk["lines"])
    assert [step["exit_code"] for step in everything["steps"]] == [0, 3]
    last = everything["chunks"][-1]["id"]
    assert admin_client.get(live, {"after": last}).json()["chunks"] == []


def test_live_view_of_a_queued_run_is_not_finished(admin_client, queued):
    (run,) = queued()
    update = admin_client.get(reverse("admin:run_live", args=[run.pk])).json()
    assert (update["finished"], update["steps"], update["chunks"]) == (False, [], [])
    assert "◷ queued" in update["status"]


def test_anonymous_visitors_are_sent_to_log_in(client, queued):
    (run,) = queued()
    for url in (LIST, page_of(run), reverse("admin:run_live", args=[run.pk])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_cancel_button_cancels_a_queued_run(admin_client, queued):
    (run,) = queued()
    response = admin_client.post(reverse("admin:run_cancel", args=[run.pk]))
    assert response["Location"] == page_of(run)
    run.refresh_from_db()
    assert (run.status, run.detail) == ("cancelled", "cancelled before it started")


def test_run_again_records_who_asked_and_links_the_first(admin_client, loud_run):
    response = admin_client.post(reverse("admin:run_rerun", args=[loud_run.pk]))
    again = Run.objects.get(rerun_of=loud_run)
    assert response["Location"] == page_of(again)
    assert (again.status, again.rerun_by, again.definition) == (
        "queued",
        "admin",
        loud_run.definition,
    )
    assert (
        f"#{loud_run.pk}</a>, asked by admin" in admin_client.get(page_of(again)).content.decode()
    )


def test_buttons_need_a_post(admin_client, queued):
    (run,) = queued()
    assert admin_client.get(reverse("admin:run_cancel", args=[run.pk])).status_code == 405
    assert Run.objects.get(pk=run.pk).status == "queued"


def test_staff_without_permissions_reads_but_cannot_act(client, queued):
    (run,) = queued()
    staff = staff_client(client)
    page = staff.get(page_of(run)).content.decode()
    assert "Cancel this run" not in page
    assert "Run it again" not in page
    assert "Cancel selected runs" not in staff.get(LIST).content.decode()
    assert staff.post(reverse("admin:run_cancel", args=[run.pk])).status_code == 403
    assert staff.post(reverse("admin:run_rerun", args=[run.pk])).status_code == 403
    assert staff.get(reverse("admin:run_redact_all")).status_code == 403
    assert Run.objects.get(pk=run.pk).status == "queued"
    assert not Run.objects.filter(rerun_of=run).exists()


def test_staff_with_the_cancel_permission_may_cancel(client, queued):
    first, second = queued(2)
    staff = staff_client(client, "cancel_run")
    assert "Cancel this run" in staff.get(page_of(first)).content.decode()
    staff.post(LIST, {"action": "cancel", "_selected_action": [first.pk, second.pk]})
    assert set(Run.objects.values_list("status", flat=True)) == {"cancelled"}


def test_nobody_edits_or_deletes_a_run(admin_client, queued):
    (run,) = queued()
    assert admin_client.get(reverse("admin:runner_run_add")).status_code == 403
    assert admin_client.post(reverse("admin:runner_run_delete", args=[run.pk])).status_code == 403
    assert Run.objects.filter(pk=run.pk).exists()


def test_redact_action_replaces_the_value_in_the_selected_runs_only(admin_client, pipelines, push):
    pipelines(LOUD)
    leaked, other = push()[0], push()[0]
    form = admin_client.post(LIST, {"action": "redact_selected", "_selected_action": [leaked.pk]})
    assert b'type="password"' in form.content
    admin_client.post(
        LIST,
        {"action": "redact_selected", "_selected_action": [leaked.pk], "value": "hunter22"},
    )
    assert "hunter22" not in output_of_run(leaked)
    assert "token=***" in output_of_run(leaked)
    assert "hunter22" in output_of_run(other)
    redaction = Redaction.objects.get()
    assert redaction.done_by == "admin"
    assert "hunter22" not in f"{redaction.scope} {redaction.done_by}"


def test_redact_all_needs_its_permission_and_changes_every_run(client, pipelines, push):
    pipelines(LOUD)
    runs = [push()[0], push()[0]]
    staff = staff_client(client, "redact_output")
    assert staff.get(reverse("admin:run_redact_all")).status_code == 200
    staff.post(reverse("admin:run_redact_all"), {"value": "hunter22"})
    assert all("hunter22" not in output_of_run(run) for run in runs)
    assert Redaction.objects.get().scope == "all runs"


def output_of_run(run: Run) -> str:
    return "".join(LogChunk.objects.filter(step__run=run).values_list("text", flat=True))


def test_a_run_executed_after_its_page_was_drawn_shows_up_in_the_live_view(admin_client, queued):
    (run,) = queued()
    live = reverse("admin:run_live", args=[run.pk])
    executed(run.pk)
    update = admin_client.get(live, {"after": 0}).json()
    assert update["finished"] is True
    assert [(chunk["lines"], chunk["ends_line"]) for chunk in update["chunks"]] == [
        (["built"], True)
    ]
