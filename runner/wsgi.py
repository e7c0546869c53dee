import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "runner.settings")
# As django.core.wsgi.get_wsgi_application, with webhook deliveries dispatched first.
django.setup(set_prefix=False)

from runner.receiver.dispatch import WebhookFirstHandler  # noqa: E402

application = WebhookFirstHandler()

# An invalid pipelines file stops the receiver at start-up, with every problem listed.
from runner.config.store import current_pipelines  # noqa: E402

current_pipelines()
