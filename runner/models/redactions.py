"""Values someone replaced in stored output."""

from django.db import models
from django.db.models.functions import Now


class Redaction(models.Model):
    """Someone replaced a leaked value in stored output; the value itself is never kept."""

    done_at = models.DateTimeField(db_default=Now())
    done_by = models.CharField(max_length=150)
    # "all runs", or the ids of the runs chosen.
    scope = models.TextField()
    chunks_changed = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"redaction by {self.done_by} at {self.done_at:%Y-%m-%d %H:%M}"
