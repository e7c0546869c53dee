import contextlib

from django.http import HttpRequest

from runner.config.pipelines_file import PipelinesError
from runner.config.store import pipelines_store

# How long an admin page waits for a reload of a changed pipelines file, so that the
# person who just edited it sees its verdict; a slower load shows on a later page. The
# receiver never waits.
RELOAD_WAIT_SECONDS = 5.0


def pipelines_status(request: HttpRequest) -> dict[str, str]:
    """The error of the pipelines file, for admin to show on every page."""
    store = pipelines_store()
    # With no valid configuration at all, store.error says why; that is all there is to show.
    with contextlib.suppress(PipelinesError):
        store.current()
    store.wait_for_reload(timeout=RELOAD_WAIT_SECONDS)
    return {"pipelines_error": store.error, "pipelines_file": str(store.path)}
