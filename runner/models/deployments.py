"""What people decide about deployments: approvals and rejections of waiting runs, and
the locks that freeze an environment."""

from django.db import models
from django.db.models.functions import Now

from runner.models.runs import Run


class Decision(models.Model):
    """A person approved or rejected a run waiting for approval."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="decisions")
    approved = models.BooleanField()
    # The name stays when the account goes.
    by = models.CharField(max_length=150)
    reason = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["run", "pk"]

    def __str__(self) -> str:
        return f"{self.run} {'approved' if self.approved else 'rejected'} by {self.by}"


class EnvironmentLock(models.Model):
    """A deploy freeze: runs of this repository's environment wait until it is unlocked."""

    repository = models.CharField(max_length=200)
    environment = models.CharField(max_length=100)
    by = models.CharField(max_length=150)
    reason = models.CharField(max_length=500)
    at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "environment"], name="one_lock_per_environment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.repository} {self.environment} locked by {self.by}"

    @property
    def words(self) -> str:
        """ "production is locked by alice: release freeze" """
        return f"{self.environment} is locked by {self.by}: {self.reason}"
