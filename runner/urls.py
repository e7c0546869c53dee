from django.conf import settings
from django.contrib import admin
from django.urls import path

from runner.badge import badge
from runner.health import healthz
from runner.metrics import metrics
from runner.views import receive_github

urlpatterns = [
    path(settings.WEBHOOK_PATH, receive_github, name="github-webhook"),
    path("admin/", admin.site.urls),
    path("badge/<str:owner>/<str:repo>/<path:pipeline>.svg", badge, name="badge"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
]
