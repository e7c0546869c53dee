import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "runner.settings")
application = get_wsgi_application()

# An invalid pipelines file stops the receiver at start-up, with every problem listed.
from runner.config.store import current_pipelines  # noqa: E402

current_pipelines()
