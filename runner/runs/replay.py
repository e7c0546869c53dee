"""Process a stored delivery again against the current pipelines.yaml.

GitHub's redeliver is answered as a duplicate once a delivery was processed; replaying is
the deliberate way to start its pipelines after fixing the configuration. `manage.py
replay` and the deliveries admin action both call `replay`, so the two cannot drift apart.
"""

from dataclasses import dataclass

from runner.config.github import event_from_payload
from runner.config.matching import Verdict, match
from runner.config.store import current_pipelines
from runner.config.text import counted
from runner.models import Delivery
from runner.models.db import write_transaction
from runner.runs.lifecycle import create_runs


class NotReplayable(ValueError):
    """The delivery has nothing to match: it only records that another one came again."""


@dataclass(frozen=True)
class Replay:
    """What matching a delivery again decided, and the runs it queued."""

    repository: str
    # The pipelines file matched against.
    source: str
    verdicts: list[Verdict]
    run_ids: list[int]

    @property
    def starting(self) -> list[str]:
        return [verdict.pipeline.name for verdict in self.verdicts if verdict.starts]

    def summary(self) -> str:
        """One line for people: what started, or why nothing did."""
        if self.run_ids:
            runs = zip(self.starting, self.run_ids, strict=True)
            named = ", ".join(f"{name} (run {pk})" for name, pk in runs)
            return f"started {counted(len(self.run_ids), 'run')}: {named}"
        if self.starting:
            return f"would start {', '.join(self.starting)}"
        if not self.verdicts:
            repository = self.repository or "its repository"
            return f"nothing started: no pipelines for {repository} in {self.source}"
        return "nothing started: " + "; ".join(str(verdict) for verdict in self.verdicts)


def replay(delivery: Delivery, dry_run: bool = False) -> Replay:
    """Match `delivery` against the configuration in force and queue the runs it starts
    (none if `dry_run`). PipelinesError if no valid pipelines file was ever loaded."""
    if delivery.original_id is not None:
        # A repeat is stored without its payload; its original holds the real one.
        raise NotReplayable("it only records that GitHub sent it again; replay the original")
    event = event_from_payload(delivery.event, delivery.payload, delivery.delivery_id)
    config = current_pipelines()
    verdicts = match(config, event)
    result = Replay(event.repository, config.source, verdicts, run_ids=[])
    if dry_run or not result.starting:
        return result
    starting = [verdict.pipeline for verdict in verdicts if verdict.starts]
    with write_transaction():
        result.run_ids.extend(create_runs(delivery.pk, event, starting))
        detail = f"replayed: started {len(result.run_ids)} run(s): {', '.join(result.starting)}"
        Delivery.objects.set_outcome(delivery.pk, Delivery.Status.ACCEPTED, detail)
    return result
