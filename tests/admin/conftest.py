"""What the admin's browser tests share."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.browser import PASSWORD


@pytest.fixture
def admin_session() -> str:
    """A superuser's session, made before the browser starts."""
    client = Client()
    client.force_login(
        get_user_model().objects.create_superuser("admin", "admin@example.com", PASSWORD)
    )
    return client.cookies["sessionid"].value
