"""Run history in Django admin, read-only: deliveries, runs with their output, refusals."""

from django.contrib import admin

from runner.admin import deliveries, rejections, runs

admin.site.site_header = admin.site.site_title = "hookrunner"
admin.site.index_title = "Deliveries and runs"

__all__ = ["deliveries", "rejections", "runs"]
