"""runner.outgoing.github_api against a GitHub-shaped server on loopback: what is sent, how
answers are classified, hook deliveries page by page, redeliveries."""

import time

import pytest

from runner.outgoing import github_api
from runner.outgoing.github_api import Outcome, Response, classify
from tests.fake_github import Answer, FakeGitHub

TOKEN = "ghp_test_token_value_0123456789"


@pytest.fixture
def github(settings):
    with FakeGitHub() as fake:
        settings.GITHUB_API_URL = fake.url
        yield fake


def test_a_request_carries_token_api_version_and_json(github):
    github.statuses(Answer(201, {"id": 1, "state": "success"}))
    response = github_api.request(
        "POST", "/repos/acme/webapp/statuses/abc123", TOKEN, json={"state": "success"}
    )
    assert (response.status, response.json, response.ok) == (
        201,
        {"id": 1, "state": "success"},
        True,
    )
    (sent,) = github.requests
    assert (sent.method, sent.path, sent.json) == (
        "POST", "/repos/acme/webapp/statuses/abc123", {"state": "success"},
    )  # fmt: skip
    assert sent.header("Authorization") == f"Bearer {TOKEN}"
    assert sent.header("Accept") == "application/vnd.github+json"
    assert sent.header("X-GitHub-Api-Version") == "2022-11-28"
    assert sent.header("User-Agent") == "hookrunner"
    assert sent.header("Content-Type") == "application/json"


def test_the_api_url_may_have_a_path_as_github_enterprise_has(github, settings):
    settings.GITHUB_API_URL = github.url + "/api/v3/"
    github.route("GET", "/api/v3/rate_limit", Answer(200, {"ok": True}))
    assert github_api.request("GET", "rate_limit", TOKEN).json == {"ok": True}


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.OK), (201, Outcome.OK), (202, Outcome.OK), (204, Outcome.OK),
        (500, Outcome.RETRY), (502, Outcome.RETRY), (503, Outcome.RETRY), (408, Outcome.RETRY),
        (400, Outcome.GIVE_UP), (401, Outcome.GIVE_UP), (403, Outcome.GIVE_UP),
        (404, Outcome.GIVE_UP), (422, Outcome.GIVE_UP), (301, Outcome.GIVE_UP),
    ],
)  # fmt: skip
def test_answers_are_classified(github, status, outcome):
    github.route("GET", "/x", status)
    assert classify(github_api.request("GET", "/x", TOKEN)).outcome == outcome


def test_a_give_up_says_what_github_said(github):
    github.route("GET", "/x", Answer(401, {"message": "Bad credentials"}))
    verdict = classify(github_api.request("GET", "/x", TOKEN))
    assert verdict.reason == "HTTP 401: Bad credentials"


def test_no_answer_in_time_is_worth_retrying(github):
    github.route("GET", "/slow", Answer(200, delay=1))
    started = time.monotonic()
    response = github_api.request("GET", "/slow", TOKEN, timeout=0.2)
    assert time.monotonic() - started < 0.9
    assert (response.status, response.error) == (None, "timed out after 0.2s")
    assert classify(response).outcome == Outcome.RETRY


def test_a_refused_connection_is_worth_retrying(settings):
    with FakeGitHub() as gone:
        settings.GITHUB_API_URL = gone.url
    response = github_api.request("GET", "/x", TOKEN, timeout=1)
    assert response.status is None
    assert response.error.startswith("could not connect")
    assert classify(response).outcome == Outcome.RETRY


def test_a_redirect_is_not_followed_so_the_token_stays_home(github):
    other = f"{github.url}/elsewhere"
    github.route("GET", "/moved", Answer(307, headers={"Location": other}))
    github.route("GET", "/elsewhere", 200)
    verdict = classify(github_api.request("GET", "/moved", TOKEN))
    assert verdict.outcome == Outcome.GIVE_UP
    assert f"redirected to {other}" in verdict.reason
    assert [r.path for r in github.requests] == ["/moved"]


def test_an_exhausted_rate_limit_waits_until_its_reset():
    now = 1_700_000_000.0
    response = Response(
        403,
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(now) + 120)},
        {"message": "API rate limit exceeded"},
    )
    verdict = classify(response, now=now)
    assert (verdict.outcome, verdict.wait) == (Outcome.RATE_LIMITED, 121)


@pytest.mark.parametrize("status", [403, 429])
def test_retry_after_is_honoured(status):
    verdict = classify(Response(status, {"retry-after": "30"}))
    assert (verdict.outcome, verdict.wait) == (Outcome.RATE_LIMITED, 30)


def test_a_secondary_rate_limit_without_headers_waits_a_minute():
    response = Response(403, {}, {"message": "You have exceeded a secondary rate limit."})
    assert classify(response).wait == 60
    assert classify(Response(429, {})).outcome == Outcome.RATE_LIMITED


def test_a_plain_403_is_not_a_rate_limit():
    response = Response(403, {"x-ratelimit-remaining": "4999"}, {"message": "Forbidden"})
    assert classify(response).outcome == Outcome.GIVE_UP


def test_hook_deliveries_are_listed_page_after_page(github):
    first = [{"id": 3, "guid": "c"}, {"id": 2, "guid": "b"}]
    next_page = f"{github.url}/repos/acme/webapp/hooks/30/deliveries?per_page=100&cursor=v1_2"
    link = f'<{next_page}>; rel="next", <{github.url}/x?cursor=v1_9>; rel="last"'
    github.hook_deliveries(Answer(200, first, {"Link": link}), Answer(200, [{"id": 1}]))
    listed = list(github_api.list_hook_deliveries("acme/webapp", 30, TOKEN))
    assert [item["id"] for item in listed] == [3, 2, 1]
    assert [r.query for r in github.requests] == [
        {"per_page": ["100"]},
        {"per_page": ["100"], "cursor": ["v1_2"]},
    ]
    assert all(r.header("Authorization") == f"Bearer {TOKEN}" for r in github.requests)


def test_the_next_page_is_asked_of_the_configured_server_whatever_the_link_names(github):
    link = '<https://evil.example/repos/acme/webapp/hooks/30/deliveries?cursor=v1_2>; rel="next"'
    github.hook_deliveries(Answer(200, [{"id": 2}], {"Link": link}), Answer(200, [{"id": 1}]))
    assert [item["id"] for item in github_api.list_hook_deliveries("acme/webapp", 30, TOKEN)] == [
        2, 1,
    ]  # fmt: skip
    assert len(github.requests) == 2


def test_listing_stops_when_the_caller_has_enough(github):
    link = f'<{github.url}/repos/acme/webapp/hooks/30/deliveries?cursor=v1_2>; rel="next"'
    github.hook_deliveries(Answer(200, [{"id": 2}], {"Link": link}))
    for _item in github_api.list_hook_deliveries("acme/webapp", 30, TOKEN):
        break
    assert len(github.requests) == 1


def test_a_failing_page_raises_with_the_verdict(github):
    github.hook_deliveries(Answer(404, {"message": "Not Found"}))
    with pytest.raises(github_api.GitHubError) as raised:
        list(github_api.list_hook_deliveries("acme/webapp", 30, TOKEN))
    assert raised.value.verdict.outcome == Outcome.GIVE_UP
    assert str(raised.value) == "HTTP 404: Not Found"


def test_redeliver_posts_an_attempt(github):
    github.redeliveries(202)
    assert github_api.redeliver("acme/webapp", 30, 12345, TOKEN).status == 202
    (sent,) = github.requests
    assert (sent.method, sent.path) == (
        "POST",
        "/repos/acme/webapp/hooks/30/deliveries/12345/attempts",
    )


def test_a_refused_redelivery_raises(github):
    github.redeliveries(Answer(422, {"message": "Validation Failed"}))
    with pytest.raises(github_api.GitHubError, match="HTTP 422: Validation Failed"):
        github_api.redeliver("acme/webapp", 30, 12345, TOKEN)
