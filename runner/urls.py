from django.conf import settings
from django.contrib import admin
from django.urls import path

from runner.admin.badge import badge
from runner.ops.health import healthz
from runner.ops.metrics import metrics
from runner.receiver.view import receive_github

urlpatterns = [
    path(settings.WEBHOOK_PATH, receive_github, name="github-webhook"),
    path("admin/", admin.site.urls),
    path("badge/<str:owner>/<str:repo>/<path:pipeline>.svg", badge, name="badge"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
]
