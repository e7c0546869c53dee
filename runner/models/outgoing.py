"""Requests hookrunner sends about runs: commit statuses, GitHub deployments and their
statuses, and notifications."""

from django.db import models
from django.db.models.functions import Now

from runner.models.runs import Run


class Outgoing(models.Model):
    """A request hookrunner sends about a run: a commit status, a GitHub deployment or one
    of its statuses to GitHub's API, or a notification. Sent by a task, retried; every
    attempt is kept. Tokens and signing secrets are looked up when sending and never
    stored here."""

    class Kind(models.TextChoices):
        COMMIT_STATUS = "commit_status", "commit status"
        NOTIFICATION = "notification", "notification"
        DEPLOYMENT = "deployment", "GitHub deployment"
        DEPLOYMENT_STATUS = "deployment_status", "GitHub deployment status"

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        SENT = "sent", "sent"
        GAVE_UP = "gave_up", "gave up"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="outgoing")
    kind = models.CharField(max_length=20, choices=Kind)
    url = models.CharField(max_length=1000)
    body = models.JSONField()
    state = models.CharField(max_length=16, choices=State, default=State.PENDING)
    # Every attempt, oldest first: {"at": iso time, "status": HTTP status or null,
    # "outcome": a runner.outgoing.github_api.Outcome value ("ok", "retry", "rate_limited",
    # "give_up"), "error": text for people, "" when it went}. What decides retries is below.
    attempts = models.JSONField(default=list)
    # Attempts that failed (outcome retry or give_up): OUTGOING_ATTEMPTS of them and it
    # gives up.
    failures = models.PositiveIntegerField(default=0)
    # Attempts GitHub answered with a rate limit (outcome rate_limited): waited out, not
    # failures, but MOST_RATE_LIMITED of them and it gives up.
    rate_limited = models.PositiveIntegerField(default=0)
    # When the latest attempt was made (null before the first): a later commit status waits
    # for this one while it is still being tried, and no longer once it has been silent long.
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # Why it gave up, shown on the run's page.
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.run}: {self.state}"
