"""What each status of a run or a step says beyond its name, in one table so that admin,
the badge and GitHub cannot drift apart: the symbol admin shows beside the word (colour is
never the only sign), the colour of a status badge, and the state of the commit status a
run that ended so reports to GitHub."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Look:
    symbol: str
    # Only a run that ended has a badge colour and a final commit status.
    badge_color: str = ""
    # GitHub's commit status states have no "cancelled" and no "skipped".
    github_state: str = ""


LOOKS = {
    "waiting": Look("⏸"),
    "queued": Look("◷"),
    "running": Look("▶"),
    "pending": Look("…"),
    "succeeded": Look("✓", "#4c1", "success"),
    "failed": Look("✗", "#e05d44", "failure"),
    "timed_out": Look("⧗", "#fe7d37", "failure"),
    # Not the code's verdict: the run was stopped (blue-grey, apart from the plain grey of
    # an unknown status), or hookrunner could not run it (amber, apart from failing red).
    "cancelled": Look("⊘", "#78909c", "error"),
    "error": Look("!", "#dfb317", "error"),
    # Nothing of it ran, because something it needs did not succeed (that one has its own
    # failure) or did not run for this commit: as GitHub treats a skipped job, not a
    # failure of its own. The description says "skipped: ...".
    "skipped": Look("\u2013", "#c0c0c0", "success"),
}
UNKNOWN = Look("")


def look_of(status: str) -> Look:
    return LOOKS.get(status, UNKNOWN)
