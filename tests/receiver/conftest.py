import io
import logging

import pytest


@pytest.fixture
def server_log():
    """What hookrunner's own log handler (settings.LOGGING's console) writes meanwhile,
    formatted as in production."""
    handler = logging.getHandlerByName("console")
    assert handler is not None, "settings.LOGGING has no console handler"
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)
