import itertools
from datetime import timedelta
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from runner.admin.badge import LABEL_COLOR, UNKNOWN_COLOR
from runner.models import Run
from runner.models.statuses import look_of
from runner.runs import lifecycle
from tests.conftest import SignedDelivery
from tests.rows import make_delivery, make_run

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"
T0 = timezone.now() - timedelta(days=1)
_minutes = itertools.count()


@pytest.fixture
def delivery():
    return make_delivery()


@pytest.fixture
def run(delivery):
    """Make a run of acme/webapp's test pipeline on main; by default each finishes a minute
    after the previous one."""

    def make(status="succeeded", finished_at=None, **fields):
        if finished_at is None and status not in ("queued", "running"):
            finished_at = T0 + timedelta(minutes=next(_minutes))
        values = {"ref": "refs/heads/main", "finished_at": finished_at, **fields}
        return make_run(delivery, status=status, **values)

    return make


def badge_url(pipeline="test", owner="acme", repo="webapp", branch=None) -> str:
    url = reverse("badge", kwargs={"owner": owner, "repo": repo, "pipeline": pipeline})
    return url if branch is None else f"{url}?{urlencode({'branch': branch})}"


def parsed(response) -> tuple[list[str], str]:
    """The badge's texts (label, message) and its right part's colour."""
    assert response.status_code == 200
    svg = ElementTree.fromstring(response.content)  # noqa: S314 (our own output)
    texts = [text.text for text in svg.iter(f"{SVG}text")]
    # Every text is drawn twice: its shadow, then itself.
    assert texts[0::2] == texts[1::2]
    colour = [rect.get("fill") for rect in svg.iter(f"{SVG}rect")][2]
    return texts[1::2], colour


def shown(client, url) -> tuple[str, str]:
    """The badge's message and colour."""
    (_, message), colour = parsed(client.get(url))
    return message, colour


@pytest.mark.parametrize(
    ("status", "message", "colour"),
    [
        ("succeeded", "succeeded", "#4c1"),
        ("failed", "failed", "#e05d44"),
        ("timed_out", "timed out", "#fe7d37"),
        ("error", "error", "#dfb317"),
        ("cancelled", "cancelled", "#78909c"),
    ],
)
def test_each_finished_status_has_its_text_and_colour(client, run, status, message, colour):
    run(status)
    (label, text), fill = parsed(client.get(badge_url()))
    assert (label, text, fill) == ("test", message, colour)
    assert f'aria-label="test: {message}"'.encode() in client.get(badge_url()).content


def test_every_ended_status_has_its_own_colour():
    colours = {status: look_of(status).badge_color for status in Run.ENDED}
    assert all(colours.values())
    assert len({*colours.values(), UNKNOWN_COLOR, LABEL_COLOR}) == len(Run.ENDED) + 2


def test_the_newest_finished_run_wins_over_older_ones(client, run):
    run("succeeded")
    run("failed")
    assert shown(client, badge_url()) == ("failed", "#e05d44")
    run("succeeded")
    assert shown(client, badge_url()) == ("succeeded", "#4c1")


def test_finish_time_decides_not_creation_order(client, run):
    run("failed", finished_at=T0 + timedelta(hours=2))
    run("succeeded", finished_at=T0 + timedelta(hours=1))
    assert shown(client, badge_url()) == ("failed", "#e05d44")


def test_runs_finished_at_the_same_moment_the_later_one_wins(client, run):
    run("failed", finished_at=T0)
    run("succeeded", finished_at=T0)
    assert shown(client, badge_url()) == ("succeeded", "#4c1")


@pytest.mark.parametrize("unfinished", ["queued", "running"])
def test_a_newer_unfinished_run_does_not_change_the_badge(client, run, unfinished):
    run("failed")
    run(unfinished)
    assert shown(client, badge_url()) == ("failed", "#e05d44")


def test_other_pipelines_and_repositories_do_not_count(client, run):
    run("succeeded")
    run("failed", pipeline="deploy")
    run("failed", repository="acme/other")
    run("failed", repository="other/webapp")
    assert shown(client, badge_url()) == ("succeeded", "#4c1")
    assert shown(client, badge_url("deploy")) == ("failed", "#e05d44")


def test_branch_keeps_only_that_branchs_pushes(client, run):
    run("succeeded", ref="refs/heads/main")
    run("failed", ref="refs/heads/feature/login")
    run("error", ref="refs/pull/7/merge")
    run("cancelled", ref="refs/tags/main")
    assert shown(client, badge_url()) == ("cancelled", "#78909c")
    assert shown(client, badge_url(branch="main")) == ("succeeded", "#4c1")
    assert shown(client, badge_url(branch="feature/login")) == ("failed", "#e05d44")
    assert shown(client, badge_url(branch="")) == ("cancelled", "#78909c")


def test_repository_names_ignore_case_pipeline_names_do_not(client, run):
    run("failed", repository="Acme/WebApp")
    assert shown(client, badge_url(owner="ACME", repo="webapp")) == ("failed", "#e05d44")
    assert shown(client, badge_url(owner="acme", repo="WEBAPP")) == ("failed", "#e05d44")
    (label, message), colour = parsed(client.get(badge_url("Test")))
    assert (label, message, colour) == ("Test", "unknown", "#9f9f9f")


@pytest.mark.parametrize(
    "url",
    [
        badge_url(owner="nobody"),
        badge_url(repo="nothing"),
        badge_url("nopipeline"),
        badge_url(branch="nobranch"),
        badge_url("only-unfinished"),
    ],
    ids=["owner", "repository", "pipeline", "branch", "no finished run"],
)
def test_anything_unknown_is_a_grey_unknown_badge_with_200(client, run, url):
    run("succeeded")
    run("running", pipeline="only-unfinished")
    run("queued", pipeline="only-unfinished")
    response = client.get(url)
    (_, message), colour = parsed(response)
    assert (message, colour) == ("unknown", "#9f9f9f")
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"


@pytest.mark.parametrize("with_a_run", [True, False], ids=["known", "unknown"])
def test_user_supplied_text_is_escaped(client, run, with_a_run):
    name = "<script>alert(1)</script> & \"co\" 'x'"
    if with_a_run:
        run("failed", pipeline=name)
    response = client.get(badge_url(name))
    (label, message), _ = parsed(response)
    assert label == name
    assert message == ("failed" if with_a_run else "unknown")
    assert b"<script" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;co&quot;" in response.content
    svg = ElementTree.fromstring(response.content)  # noqa: S314 (our own output)
    assert not [element for element in svg.iter() if "script" in element.tag]
    assert svg.get("aria-label") == f"{name}: {message}"


def test_a_pipeline_name_with_a_slash_is_found(client, run):
    run("failed", pipeline="lint/python")
    assert parsed(client.get(badge_url("lint/python")))[0] == ["lint/python", "failed"]


def test_characters_xml_cannot_carry_still_give_a_badge(client, run):
    run("failed", pipeline="a\x01b")
    (label, message), colour = parsed(client.get("/badge/acme/webapp/a%01b.svg"))
    assert (label, message, colour) == ("a\ufffdb", "failed", "#e05d44")


@pytest.mark.parametrize(
    "url",
    ["/badge/acme/webapp/a%00b.svg", "/badge/ac%00me/webapp/test.svg", badge_url(branch="m\0")],
    ids=["pipeline", "owner", "branch"],
)
def test_a_nul_anywhere_is_unknown_without_asking_the_database(
    client, run, django_assert_num_queries, url
):
    run("succeeded")
    with django_assert_num_queries(0):
        response = client.get(url)
    assert parsed(response)[0][1] == "unknown"


def test_a_longer_label_makes_a_wider_badge(client, run):
    run("succeeded", pipeline="a-rather-long-pipeline-name")
    short = ElementTree.fromstring(client.get(badge_url("x")).content)  # noqa: S314
    long = ElementTree.fromstring(  # noqa: S314
        client.get(badge_url("a-rather-long-pipeline-name")).content
    )
    assert int(long.get("width")) > int(short.get("width")) + 100
    assert long.get("height") == "20"


def test_headers_type_public_short_cache_etag(client, run):
    run("succeeded")
    response = client.get(badge_url())
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert response["Cache-Control"] == "max-age=60, public"
    assert response["ETag"].startswith('"') and len(response["ETag"]) == 34
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'"
    # Nothing that makes caches keep one copy per visitor.
    assert "Vary" not in response
    assert not response.cookies


def test_same_badge_answers_304_to_its_etag_and_a_new_status_changes_it(client, run):
    run("succeeded")
    first = client.get(badge_url())
    again = client.get(badge_url(), headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]
    assert again["Cache-Control"] == "max-age=60, public"
    run("failed")
    changed = client.get(badge_url(), headers={"If-None-Match": first["ETag"]})
    assert changed.status_code == 200
    assert changed["ETag"] != first["ETag"]
    assert parsed(changed)[0] == ["test", "failed"]


def test_head_gets_the_headers_without_the_body(client, run):
    run("succeeded")
    response = client.head(badge_url())
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert response["ETag"] == client.get(badge_url())["ETag"]
    assert response.content == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_are_405_even_with_csrf_checks(run, method):
    run("succeeded")
    response = Client(enforce_csrf_checks=True).generic(method, badge_url())
    assert response.status_code == 405
    assert set(response["Allow"].split(", ")) == {"GET", "HEAD"}


@pytest.mark.parametrize("branch", [None, "main"], ids=["any branch", "branch"])
def test_one_query(client, run, django_assert_num_queries, branch):
    run("failed")
    run("succeeded")
    run("running")
    with django_assert_num_queries(1):
        assert parsed(client.get(badge_url(branch=branch)))[0] == ["test", "succeeded"]
    with django_assert_num_queries(1):
        assert client.get(badge_url("nothing", branch=branch)).status_code == 200


def test_runs_made_by_a_signed_push_show_once_finished(client, post_delivery):
    response = post_delivery(SignedDelivery.of_fixture("push__branch"))
    runs = Run.objects.filter(pk__in=response.json()["runs"])
    assert {run.pipeline for run in runs} == {"test", "deploy"}
    assert parsed(client.get(badge_url("deploy", branch="main")))[0] == ["deploy", "unknown"]
    runs.update(status="running")
    for run in runs.all():
        lifecycle.finish(run, "succeeded" if run.pipeline == "test" else "timed_out", "")
    assert shown(client, badge_url(branch="main")) == ("succeeded", "#4c1")
    assert parsed(client.get(badge_url("deploy", branch="main")))[0] == ["deploy", "timed out"]
