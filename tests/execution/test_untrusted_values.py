"""Values from a payload reach steps and git only as data: a branch named `$(touch x)`
is just a string. Each test delivers a real push and executes its run with a checkout."""

import json
import uuid
from pathlib import Path

import pytest

from tests.conftest import SignedDelivery, executed, output_of
from tests.rows import Origin

pytestmark = pytest.mark.django_db


@pytest.fixture
def origin(tmp_path, settings) -> Origin:
    settings.MIRRORS_DIR = tmp_path / "mirrors"
    return Origin(tmp_path / "origin")


@pytest.fixture
def deliver(post_delivery):
    """Post a push whose payload has `changes` applied, and execute its run."""

    def push(**changes):
        payload = json.loads(SignedDelivery.of_fixture("push__branch").body)
        payload.update({k: v for k, v in changes.items() if k != "clone_url"})
        if "clone_url" in changes:
            payload["repository"]["clone_url"] = changes["clone_url"]
        delivery = SignedDelivery(event="push", body=json.dumps(payload).encode(), delivery_id="u")
        (run_id,) = post_delivery(delivery).json()["runs"]
        return executed(run_id)

    return push


BRANCH_NAMES = ["$(touch {marker})", ";touch {marker};", "`touch {marker}`", "a'b\"c$(id)"]


@pytest.mark.parametrize("template", BRANCH_NAMES)
def test_branch_name_reaches_steps_as_plain_text_and_runs_nothing(
    pipelines, deliver, origin, settings, tmp_path, template
):
    marker = tmp_path / "pwned"
    branch = template.format(marker=marker)
    pipelines("""\
        ci:
          on: {push: null}
          checkout: true
          steps:
            - {name: quoted, run: 'echo "$GITHUB_REF_NAME"'}
            - {name: unquoted, run: echo $GITHUB_REF_NAME}
        """)
    use_clone_url(settings, origin)
    run = deliver(ref=f"refs/heads/{branch}", after=origin.commit("x\n", "first"))
    assert run.status == "succeeded", run.detail
    checkout, quoted, unquoted = run.steps.all()
    assert checkout.status == "succeeded"
    assert output_of(quoted) == f"{branch}\n"
    # Unquoted, the shell splits it into words, and that is all it does.
    assert output_of(unquoted) == " ".join(branch.split()) + "\n"
    assert not marker.exists()


@pytest.fixture
def short_marker():
    """A file path short enough to fit, whole, in the 64 characters of a run's sha."""
    marker = Path(f"/tmp/hr-pwned-{uuid.uuid4().hex[:12]}")
    yield marker
    marker.unlink(missing_ok=True)


def test_sha_that_is_not_a_sha_never_reaches_git(
    pipelines, deliver, origin, settings, short_marker
):
    pipelines(READ)
    use_clone_url(settings, origin)
    origin.commit("x\n", "first")
    run = deliver(after=f"--upload-pack=touch {short_marker}")
    assert not short_marker.exists()
    assert (run.status, run.detail) == (
        "error",
        f"checkout: '--upload-pack=touch {short_marker}' is not a commit sha",
    )


def test_clone_url_that_looks_like_an_option_is_taken_for_a_path(
    pipelines, deliver, origin, tmp_path
):
    marker = tmp_path / "pwned"
    pipelines(READ)
    run = deliver(after=origin.commit("x\n", "first"), clone_url=f"--upload-pack=touch {marker}")
    assert (run.status, run.detail) == ("error", "checkout failed: git exited with 128")
    assert not marker.exists()


READ = """\
    ci:
      on: {push: null}
      checkout: true
      steps: [{name: read, run: cat README}]
    """


def use_clone_url(settings, origin: Origin) -> None:
    """Point acme/webapp's clone_url in the pipelines file at the local origin."""
    text = settings.PIPELINES_FILE.read_text()
    settings.PIPELINES_FILE.write_text(
        text.replace("    pipelines:", f"    clone_url: {origin.path}\n    pipelines:", 1)
    )
