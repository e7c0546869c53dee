import contextlib

from django.http import HttpRequest

from runner.config.pipelines_file import PipelinesError
from runner.config.store import pipelines_store


def pipelines_status(request: HttpRequest) -> dict[str, str]:
    """The error of the pipelines file, for admin to show on every page."""
    store = pipelines_store()
    # With no valid configuration at all, store.error says why; that is all there is to show.
    with contextlib.suppress(PipelinesError):
        store.current()
    return {"pipelines_error": store.error, "pipelines_file": str(store.path)}
