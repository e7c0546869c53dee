"""Run history in Django admin, read-only: deliveries, runs with their output, refusals,
workers, and an index page that shows each pipeline's last run."""

from django.contrib import admin

from runner.admin import deliveries, index, rejections, runs, workers

admin.site.site_header = admin.site.site_title = "hookrunner"
admin.site.index_title = "Deliveries and runs"
# Admin is the whole site (/ redirects to it): a "View site" link would lead back here.
admin.site.site_url = None

__all__ = ["deliveries", "index", "rejections", "runs", "workers"]
