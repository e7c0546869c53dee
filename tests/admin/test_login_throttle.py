"""Admin's login is throttled (django-axes): a username is locked out from an address after
LOGIN_FAILURE_LIMIT failed logins, for LOGIN_COOLOFF_MINUTES, and can be unlocked sooner.
Real logins through /admin/login/, as a browser posts them."""

import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import F
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]
LOGIN_URL = reverse("admin:login")
INDEX_URL = reverse("admin:index")
PASSWORD = "the-right-password"
ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.9"
LOCKED_OUT = "Too many failed logins: this username is locked out from this address for"


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    """Each wrong password is checked against the real hash: keep that cheap here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_superuser("admin", "admin@example.com", PASSWORD)


def log_in(client: Client, password: str, address: str = ATTACKER, username: str = "admin"):
    """Post admin's login form from `address`, as a browser does."""
    return client.post(
        f"{LOGIN_URL}?next={INDEX_URL}",
        {"username": username, "password": password, "next": INDEX_URL},
        REMOTE_ADDR=address,
    )


def logged_in(response, client: Client) -> bool:
    """Sent on to the index, which then opens: the session is a logged-in one."""
    if response.status_code != 302 or response.url != INDEX_URL:
        return False
    return client.get(INDEX_URL).status_code == 200


def lock_out(client: Client, address: str = ATTACKER) -> None:
    """Wrong passwords up to the limit; the last one is answered with the lockout page."""
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = log_in(client, "wrong", address)
        assert response.status_code == 200
        assert b"Please enter the correct username and password" in response.content
    locked = log_in(client, "wrong", address)
    assert locked.status_code == 429
    assert LOCKED_OUT in locked.content.decode()


def age_failures(by: timedelta) -> None:
    """As if the failures recorded so far happened `by` earlier."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - by)


def test_the_right_password_after_many_wrong_ones_is_refused(client, admin_user):
    """The issue's case: 300 wrong passwords, then the right one, was accepted."""
    for _ in range(300):
        log_in(client, "wrong")
    response = log_in(client, PASSWORD)
    assert response.status_code == 429
    assert not logged_in(response, client)
    body = response.content.decode()
    minutes = settings.AXES_COOLOFF_TIME // timedelta(minutes=1)
    assert f"{LOCKED_OUT} {minutes} minutes after the failure that locked it" in body
    assert "An administrator can unlock it sooner." in body
    attempt = AccessAttempt.objects.get()
    assert (attempt.username, attempt.ip_address) == ("admin", ATTACKER)
    assert attempt.failures_since_start == settings.AXES_FAILURE_LIMIT, (
        "refused logins are not counted"
    )


def test_the_limit_is_the_setting(client, admin_user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    assert log_in(client, "wrong").status_code == 200
    assert log_in(client, "wrong").status_code == 429
    assert log_in(client, PASSWORD).status_code == 429


def test_one_failure_short_of_the_limit_the_right_password_gets_in(client, admin_user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "wrong").status_code == 200
    assert logged_in(log_in(client, PASSWORD), client)


def test_a_successful_login_forgets_the_failures_before_it(client, admin_user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "wrong")
    assert logged_in(log_in(client, PASSWORD), client)
    client.post(reverse("admin:logout"))
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "wrong").status_code == 200
    assert logged_in(log_in(client, PASSWORD), client)


def test_the_same_user_from_another_address_still_gets_in(client, admin_user):
    lock_out(client)
    person = Client()
    assert logged_in(log_in(person, PASSWORD, ELSEWHERE), person)
    assert log_in(Client(), PASSWORD, ATTACKER).status_code == 429, "still locked there"


def test_another_user_from_the_locked_address_still_gets_in(client, admin_user):
    get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password")
    lock_out(client)
    colleague = Client()
    assert logged_in(log_in(colleague, "ops-password", ATTACKER, username="ops"), colleague)


def test_the_lockout_ends_after_the_cool_off_however_often_it_is_tried(client, admin_user):
    cool_off = settings.AXES_COOLOFF_TIME
    lock_out(client)
    age_failures(cool_off - timedelta(minutes=1))
    assert log_in(client, PASSWORD).status_code == 429, "a minute to go"
    assert log_in(client, "wrong").status_code == 429
    age_failures(timedelta(minutes=1, seconds=1))
    assert logged_in(log_in(client, PASSWORD), client), "tries meanwhile did not extend it"
    assert not AccessAttempt.objects.exists()


def test_a_shorter_cool_off_is_honoured(client, admin_user, settings):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    lock_out(client)
    age_failures(timedelta(seconds=61))
    assert logged_in(log_in(client, PASSWORD), client)


def unlock_in_admin() -> None:
    """Another superuser selects the entry under Axes > Access attempts and deletes it."""
    root = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    superuser = Client()
    superuser.force_login(root)
    url = reverse("admin:axes_accessattempt_changelist")
    assert "Delete selected access attempts" in superuser.get(url).content.decode()
    attempt = AccessAttempt.objects.get(username="admin")
    chosen = {"action": "delete_selected", "_selected_action": [attempt.pk]}
    confirm = superuser.post(url, chosen)
    assert confirm.status_code == 200 and b"<title>Delete multiple objects" in confirm.content
    assert superuser.post(url, {**chosen, "post": "yes"}).status_code == 302


@pytest.mark.parametrize(
    "unlock",
    [
        pytest.param(lambda: call_command("axes_reset"), id="axes_reset"),
        pytest.param(lambda: call_command("axes_reset_username", "admin"), id="by-username"),
        pytest.param(unlock_in_admin, id="in-admin"),
    ],
)
def test_an_administrator_unlocks_it_at_once(client, admin_user, unlock):
    lock_out(client)
    unlock()
    assert not AccessAttempt.objects.filter(username="admin").exists()
    assert logged_in(log_in(client, PASSWORD), client)


def test_axes_reset_says_what_it_removed(client, admin_user, capsys):
    lock_out(client)
    call_command("axes_reset")
    assert "1 attempts removed." in capsys.readouterr().out


def test_admin_shows_the_attempts_and_who_is_locked_out(client, admin_user):
    lock_out(client)
    log_in(Client(), "wrong", ELSEWHERE)
    root = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    superuser = Client()
    superuser.force_login(root)
    index = superuser.get(INDEX_URL).content.decode()
    for model in ("accessattempt", "accesslog", "accessfailurelog"):
        assert reverse(f"admin:axes_{model}_changelist") in index
    listing = superuser.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert ATTACKER in html and ELSEWHERE in html
    assert "Locked Out" in html
    remaining = settings.AXES_FAILURE_LIMIT - 1
    assert f"{remaining} Attempt Remaining" in html
    locked = superuser.get(reverse("admin:axes_accessattempt_changelist") + "?locked_out=yes")
    assert ATTACKER in locked.content.decode()
    assert ELSEWHERE not in locked.content.decode()


def test_tests_still_log_in_with_force_login_or_login_given_a_request(client, admin_user):
    """The axes backend needs the request: client.login passes one, force_login needs none."""
    assert client.login(request=HttpRequest(), username="admin", password=PASSWORD)
    assert client.get(INDEX_URL).status_code == 200
    other = Client()
    other.force_login(admin_user)
    assert other.get(INDEX_URL).status_code == 200


@pytest.mark.parametrize(
    ("name", "value"), [("LOGIN_FAILURE_LIMIT", "0"), ("LOGIN_COOLOFF_MINUTES", "0")]
)
def test_a_limit_or_cool_off_below_one_stops_start_up(name, value):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env={**os.environ, name: value},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"{name}={value} must be 1 or more" in result.stderr


def http_log_in(base_url: str, password: str) -> tuple[int, str]:
    """Log in over HTTP as a browser does, with the login page's CSRF cookie and token."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    url = f"{base_url}{LOGIN_URL}?next={INDEX_URL}"
    with opener.open(url, timeout=10) as response:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode())
    fields = {"csrfmiddlewaretoken": token.group(1), "username": "admin", "password": password}
    body = urllib.parse.urlencode({**fields, "next": INDEX_URL}).encode()
    try:
        with opener.open(url, body, timeout=10) as response:
            return response.status, f"{response.url}\n{response.read().decode()}"
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.django_db(transaction=True)
def test_over_http_the_right_password_is_refused_once_locked_out(live_server, admin_user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        status, page = http_log_in(live_server.url, "wrong")
        assert status == 200 and "Please enter the correct username and password" in page
    status, page = http_log_in(live_server.url, "wrong")
    assert (status, LOCKED_OUT in page) == (429, True)
    status, page = http_log_in(live_server.url, PASSWORD)
    assert (status, LOCKED_OUT in page) == (429, True)
    assert AccessAttempt.objects.get().ip_address == "127.0.0.1"
    call_command("axes_reset_username", "admin")
    status, page = http_log_in(live_server.url, PASSWORD)
    assert status == 200 and page.startswith(f"{live_server.url}{INDEX_URL}\n")
