"""Run history in Django admin, read-only: deliveries, runs with their output, refusals,
workers, environments, and an index page that shows each pipeline's last run."""

from django.contrib import admin
from django_tasks_db import admin as task_backend_admin

from runner.admin import deliveries, environments, index, rejections, runs, workers

admin.site.site_header = admin.site.site_title = "hookrunner"
admin.site.index_title = "Deliveries and runs"
# Admin is the whole site (/ redirects to it): a "View site" link would lead back here.
admin.site.site_url = None
# The task backend's own table is how a run reaches a worker, not history: a run's page
# and the Workers page say all of it that a person needs, and its rows, listed beside
# runs, read as a second record of them. `manage.py purge` clears it. Its admin module is
# imported here because runner's admin is discovered first.
admin.site.unregister(task_backend_admin.DBTaskResult)

__all__ = ["deliveries", "environments", "index", "rejections", "runs", "workers"]
