import contextlib

from django.db import DatabaseError
from django.http import HttpRequest
from django.utils import timezone

from runner.config.pipelines_file import PipelinesError
from runner.config.store import pipelines_store
from runner.ops.health import sandbox_problems


def sandbox_status(request: HttpRequest) -> dict[str, list[str]]:
    """What keeps live workers from sandboxing steps, for admin to show on every page."""
    if not getattr(request, "user", None) or not request.user.is_staff:
        return {}
    with contextlib.suppress(DatabaseError):
        return {"sandbox_problems": sandbox_problems(timezone.now())}
    return {}


def pipelines_status(request: HttpRequest) -> dict[str, str]:
    """The error of the pipelines file, for admin to show on every page."""
    store = pipelines_store()
    # With no valid configuration at all, store.error says why; that is all there is to show.
    with contextlib.suppress(PipelinesError):
        store.current()
    return {"pipelines_error": store.error, "pipelines_file": str(store.path)}
