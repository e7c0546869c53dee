from django.conf import settings
from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from runner.admin.badge import badge
from runner.ops.health import healthz
from runner.ops.metrics import metrics
from runner.receiver.view import receive_github

urlpatterns = [
    # Admin is the only site there is. A temporary redirect: browsers keep permanent ones.
    path("", RedirectView.as_view(pattern_name="admin:index")),
    path(settings.WEBHOOK_PATH, receive_github, name="github-webhook"),
    # Without its slash too: a POST redirected there would come back a GET (smee-client
    # drops the slash of its target).
    path(settings.WEBHOOK_PATH.rstrip("/"), receive_github),
    path("admin/", admin.site.urls),
    path("badge/<str:owner>/<str:repo>/<path:pipeline>.svg", badge, name="badge"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
]
