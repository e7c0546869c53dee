"""The WSGI handler: webhook deliveries go through a short middleware chain of their own,
everything else through settings.MIDDLEWARE.

A delivery needs none of the admin's middleware: no session, no login, no CSRF token
(GitHub signs it, and the view is CSRF-exempt), no messages, no static files, no frame
options on JSON. Run for every delivery, they were a sixth of its time in Django. The
host check still comes first, and the security headers still apply."""

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.utils.module_loading import import_string

from runner.receiver.view import receive_github

WEBHOOK_MIDDLEWARE = (
    "runner.receiver.hosts.RefusedHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
)


def webhook_paths() -> frozenset[str]:
    """The paths runner.urls routes to the receiver, with its slash and without."""
    path = "/" + settings.WEBHOOK_PATH
    return frozenset({path, path.rstrip("/")})


def webhook_chain(middleware: tuple[str, ...] = WEBHOOK_MIDDLEWARE):
    """The receiver wrapped in `middleware`, the first one outermost, as Django wraps
    settings.MIDDLEWARE: an exception in any of them becomes Django's error response."""
    handler = convert_exception_to_response(receive_github)
    for path in reversed(middleware):
        handler = convert_exception_to_response(import_string(path)(handler))
    return handler


class WebhookFirstHandler(WSGIHandler):
    """Django's WSGI handler, but a request for the webhook path skips the URL resolver
    and settings.MIDDLEWARE for webhook_chain."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async)
        paths, webhook, everything = webhook_paths(), webhook_chain(), self._middleware_chain
        self._middleware_chain = lambda request: (
            webhook(request) if request.path_info in paths else everything(request)
        )
