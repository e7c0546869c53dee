import pytest

from tests.fake_github import FakeGitHub


@pytest.fixture
def github_api(settings):
    """The fake GitHub as GITHUB_API_URL, PUBLIC_URL set, retries quick; a test module
    scripts its answers and sets its own token."""
    with FakeGitHub() as fake:
        settings.GITHUB_API_URL = fake.url
        settings.PUBLIC_URL = "https://ci.example.com"
        settings.OUTGOING_RETRY_SECONDS = 0.01
        settings.OUTGOING_TIMEOUT_SECONDS = 0.3
        yield fake
