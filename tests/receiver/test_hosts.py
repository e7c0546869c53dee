"""A request naming a host hookrunner does not serve: answered with the reason and the
setting, logged once a minute per host, recorded among rejected requests."""

import json
import os
import subprocess
import sys

import pytest

from runner.models import RejectedRequest
from runner.receiver import hosts
from tests.conftest import SignedDelivery

pytestmark = pytest.mark.django_db

HINT = (
    "host 'ci.example.com' is not in ALLOWED_HOSTS; add it to ALLOWED_HOSTS, or set "
    "PUBLIC_URL to the URL people use"
)


@pytest.fixture(autouse=True)
def nothing_logged_yet():
    hosts._logged_at.clear()


def test_a_delivery_for_another_host_is_answered_in_json_with_the_setting_to_change(
    post_delivery,
):
    response = post_delivery(SignedDelivery.of_fixture("push__branch"), Host="ci.example.com")
    assert response.status_code == 400
    assert response.json() == {
        "delivery": response.json()["delivery"],
        "status": "rejected",
        "runs": [],
        "detail": HINT,
    }
    rejected = RejectedRequest.objects.get()
    assert (rejected.http_status, rejected.reason) == (
        400,
        "host 'ci.example.com' is not in ALLOWED_HOSTS",
    )


def test_an_admin_page_for_another_host_says_why_in_plain_text(client):
    response = client.get("/admin/", HTTP_HOST="ci.example.com")
    assert (response.status_code, response["Content-Type"]) == (400, "text/plain; charset=utf-8")
    assert response.text == HINT + "\n"


def test_each_refused_host_is_logged_once_a_minute(client, server_log):
    for _ in range(3):
        client.get("/admin/", HTTP_HOST="ci.example.com")
    client.get("/admin/", HTTP_HOST="192.168.1.20:8000")
    refusals = [line for line in server_log.getvalue().splitlines() if "refused a request" in line]
    assert len(refusals) == 2
    assert "host 'ci.example.com' is not in ALLOWED_HOSTS" in refusals[0]
    assert "host '192.168.1.20:8000' is not in ALLOWED_HOSTS" in refusals[1]
    assert "add it to ALLOWED_HOSTS, or set PUBLIC_URL" in refusals[0]


def test_a_served_host_passes(client):
    assert client.get("/healthz", HTTP_HOST="localhost").status_code == 200


def settings_in_a_fresh_process(**environ: str) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.ALLOWED_HOSTS))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ALLOWED_HOSTS", "PUBLIC_URL")}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**env, **environ}, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return json.loads(result.stdout)


def test_public_urls_host_is_allowed_when_allowed_hosts_is_unset():
    assert settings_in_a_fresh_process(PUBLIC_URL="https://ci.example.com:8443/hookrunner") == [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "ci.example.com",
    ]


def test_allowed_hosts_when_set_is_taken_as_it_is():
    found = settings_in_a_fresh_process(
        PUBLIC_URL="https://ci.example.com", ALLOWED_HOSTS="hooks.example.org"
    )
    assert found == ["hooks.example.org"]
