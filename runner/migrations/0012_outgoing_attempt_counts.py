"""Outgoing attempts: their count and outcome in fields, not in the text of their errors.

Adds `failures`, `rate_limited` and `last_attempt_at` to Outgoing, and an "outcome" key to
each entry of its `attempts` (a runner.outgoing.github_api.Outcome value), then fills them
for the rows already stored, from what their entries say:

- an entry with no error went: outcome "ok";
- an entry whose error starts with "rate limited" was a rate limit: outcome "rate_limited",
  counted in `rate_limited` (only such entries had errors starting so);
- any other entry failed, counted in `failures`: outcome "retry" if its status is one
  github_api.classify tries again (none: no answer; 408; 5xx), else "give_up" (another 4xx,
  a redirect);
- an entry that already has an outcome keeps it, and is counted by it (running this twice
  changes nothing);
- `last_attempt_at` is the time of the last entry, null for a row never attempted.

Going back drops the fields; the "outcome" keys stay in the lists, where nothing reads them.
"""

from datetime import datetime

from django.db import migrations, models

BATCH = 500
RATE_LIMITED_TEXT = "rate limited"
FAILED = ("retry", "give_up")


def entry_outcome(entry) -> str:
    """The outcome of an attempt recorded before outcomes were (see the docstring)."""
    if entry.get("outcome"):
        return entry["outcome"]
    error = entry.get("error") or ""
    if not error:
        return "ok"
    if error.startswith(RATE_LIMITED_TEXT):
        return "rate_limited"
    status = entry.get("status")
    if status is None or status == 408 or status >= 500:
        return "retry"
    return "give_up"


def _last_at(attempts):
    try:
        return datetime.fromisoformat(attempts[-1]["at"]) if attempts else None
    except (KeyError, TypeError, ValueError):
        return None


def count_attempts(apps, schema_editor) -> None:
    """Fill the new fields of every Outgoing row from its attempts list."""
    Outgoing = apps.get_model("runner", "Outgoing")
    rows = Outgoing.objects.using(schema_editor.connection.alias).only("pk", "attempts")
    last_pk = 0
    while batch := list(rows.filter(pk__gt=last_pk).order_by("pk")[:BATCH]):
        last_pk = batch[-1].pk
        changed = []
        for row in batch:
            if not row.attempts:
                continue
            row.attempts = [{**entry, "outcome": entry_outcome(entry)} for entry in row.attempts]
            outcomes = [entry["outcome"] for entry in row.attempts]
            row.failures = sum(1 for outcome in outcomes if outcome in FAILED)
            row.rate_limited = outcomes.count("rate_limited")
            row.last_attempt_at = _last_at(row.attempts)
            changed.append(row)
        Outgoing.objects.using(schema_editor.connection.alias).bulk_update(
            changed, ["attempts", "failures", "rate_limited", "last_attempt_at"]
        )


class Migration(migrations.Migration):

    dependencies = [
        ('runner', '0011_runs_wait_for_needs_or_turn'),
    ]

    operations = [
        migrations.AddField(
            model_name='outgoing',
            name='failures',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='outgoing',
            name='last_attempt_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='outgoing',
            name='rate_limited',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(count_attempts, migrations.RunPython.noop),
    ]
