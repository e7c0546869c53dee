"""Which of a webhook's recent deliveries to ask GitHub to send again.

GitHub lists each attempt of a delivery as its own item (a redelivery has
`redelivery: true` and the guid of the first, the X-GitHub-Delivery hookrunner stores as
delivery_id). A delivery is sent again when hookrunner failed processing it, or when no
attempt got a 2xx and hookrunner has nothing final for it (it never arrived, was refused,
or was cut off). hookrunner answers 2xx only once the delivery and its runs are committed,
so a 2xx means it was processed, even if the row was purged since. Redelivering is safe:
a delivery processed meanwhile is answered as a duplicate and starts nothing.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from runner.models import Delivery

# GitHub redelivers only deliveries of the last 3 days.
REDELIVERY_WINDOW = timedelta(days=3)
# Redeliveries asked for in one run at most; the rest wait for the next run.
MAX_REDELIVERIES = 50
Status = Delivery.Status
PROCESSED = frozenset({Status.ACCEPTED, Status.IGNORED})
# The hook id `manage.py trigger` stores its local deliveries with.
LOCAL_HOOK_ID = "local"


@dataclass(frozen=True)
class Attempt:
    """One item of GitHub's list of a hook's deliveries."""

    id: int
    guid: str
    delivered_at: datetime
    redelivery: bool
    status_code: int
    status: str
    event: str
    action: str

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> "Attempt":
        return cls(
            id=int(item["id"]),
            guid=str(item["guid"]),
            delivered_at=datetime.fromisoformat(str(item["delivered_at"])),
            redelivery=bool(item.get("redelivery")),
            status_code=int(item.get("status_code") or 0),
            status=str(item.get("status") or ""),
            event=str(item.get("event") or ""),
            action=str(item.get("action") or ""),
        )

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def github_status(self) -> str:
        return f"{self.status_code or '-'} {self.status}".strip()


class Action(StrEnum):
    REDELIVER = "redeliver"
    # Worth redelivering, but over this run's limit: the next run asks.
    LATER = "later"
    SKIP = "skip"


@dataclass(frozen=True)
class Decision:
    """What to do about one delivery (guid): its newest attempt, hookrunner's status of it
    ("" when it has no row), the action, and why, unless it is redelivered."""

    latest: Attempt
    attempts: int
    hookrunner_status: str
    action: Action
    why: str = ""

    @property
    def redeliver(self) -> bool:
        return self.action == Action.REDELIVER

    @property
    def text(self) -> str:
        """ "redeliver", or the action and why: "skip: hookrunner processed it"."""
        return f"{self.action}: {self.why}" if self.why else str(self.action)

    @property
    def event(self) -> str:
        return (
            f"{self.latest.event}.{self.latest.action}" if self.latest.action else self.latest.event
        )


def decide(
    attempts: Iterable[Attempt],
    stored: Mapping[str, str],
    now: datetime,
    limit: int = MAX_REDELIVERIES,
) -> list[Decision]:
    """One decision per guid, oldest first (the order GitHub first sent them, so runs are
    queued in that order too). `stored`: hookrunner's status per delivery id."""
    by_guid: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        by_guid.setdefault(attempt.guid, []).append(attempt)
    groups = sorted(by_guid.values(), key=lambda group: min(a.delivered_at for a in group))
    decisions, asked = [], 0
    for group in groups:
        latest = max(group, key=lambda a: (a.delivered_at, a.id))
        status = stored.get(latest.guid, "")
        skip = _reason_to_skip(group, latest, status, now)
        if skip:
            decisions.append(Decision(latest, len(group), status, Action.SKIP, skip))
        elif asked >= limit:
            why = f"over this run's limit of {limit} redeliveries"
            decisions.append(Decision(latest, len(group), status, Action.LATER, why))
        else:
            asked += 1
            decisions.append(Decision(latest, len(group), status, Action.REDELIVER))
    return decisions


def _reason_to_skip(group: list[Attempt], latest: Attempt, status: str, now: datetime) -> str:
    """Why the delivery is not redelivered, or "" if it is."""
    if latest.delivered_at < now - REDELIVERY_WINDOW:
        return "older than GitHub's 3-day redelivery window"
    if status == Status.FAILED:
        return ""
    if any(attempt.succeeded for attempt in group):
        return "hookrunner answered it with a 2xx"
    if status in PROCESSED:
        # It committed, but GitHub did not see the answer (a timeout, say).
        return "hookrunner processed it"
    return ""


def stored_statuses(guids: Iterable[str], chunk: int = 500) -> dict[str, str]:
    """hookrunner's status of each of `guids` it has a delivery for (repeats left out)."""
    guids = list(dict.fromkeys(guids))
    found: dict[str, str] = {}
    for start in range(0, len(guids), chunk):
        rows = Delivery.objects.originals().filter(delivery_id__in=guids[start : start + chunk])
        found.update(rows.values_list("delivery_id", "status"))
    return found


def latest_hook_id(repository: str) -> str:
    """The hook id of the newest delivery stored for `repository` from GitHub, or ""."""
    return (
        Delivery.objects.filter(repository__iexact=repository)
        .exclude(hook_id__in=["", LOCAL_HOOK_ID])
        .order_by("-received_at", "-pk")
        .values_list("hook_id", flat=True)
        .first()
        or ""
    )
