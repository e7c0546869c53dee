"""Worker processes and when each was last heard of."""

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class WorkerSeen(models.Model):
    """A worker process and when it last said it was alive, for /healthz and admin."""

    name = models.CharField(max_length=200, unique=True)  # "host:pid"
    queues = models.CharField(max_length=500)
    started_at = models.DateTimeField(db_default=Now())
    seen_at = models.DateTimeField(db_default=Now(), db_index=True)
    # Why it cannot sandbox steps (bwrap missing or refused), as it last found; "" if it can.
    sandbox_problem = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "worker"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def beat(cls, name: str, queues: str, sandbox_problem: str = "") -> None:
        # One UPDATE every beat; the row is created only by the first.
        found = cls.objects.filter(name=name).update(
            queues=queues, seen_at=timezone.now(), sandbox_problem=sandbox_problem
        )
        if not found:
            cls.objects.create(name=name, queues=queues, sandbox_problem=sandbox_problem)
