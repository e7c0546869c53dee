"""Which pipelines a delivery starts, and why the others do not. Pure, no ORM."""

from dataclasses import dataclass

from runner.config.github import (
    COMMITS_CAPPED,
    COMMITS_UNREADABLE,
    FILES_CAPPED,
    NO_COMMITS,
    Event,
    branch_of,
    tag_of,
)
from runner.config.globs import Glob, matches_any
from runner.config.pipelines import Pipeline, PushTrigger
from runner.config.repositories import Config


@dataclass(frozen=True)
class Verdict:
    pipeline: Pipeline
    starts: bool
    reason: str

    def __str__(self) -> str:
        if not self.starts:
            outcome = f"does not start: {self.reason}"
        elif self.reason == TRIGGERS_MATCH:
            outcome = "starts"
        else:
            outcome = f"starts ({self.reason})"
        return f"{self.pipeline.name}: {outcome}"


TRIGGERS_MATCH = "triggers match"


def match(config: Config, event: Event) -> list[Verdict]:
    """For each pipeline of the event's repository: does it start, and if not, why not."""
    repository = config.repository(event.repository)
    if repository is None:
        return []
    return [_verdict(pipeline, event) for pipeline in repository.pipelines]


def is_from_fork(event: Event) -> bool:
    return event.name == "pull_request" and (
        event.head_repository.lower() != event.repository.lower()
    )


def _verdict(pipeline: Pipeline, event: Event) -> Verdict:
    note = None
    if event.name == "push":
        refusal = _push_refusal(pipeline.push, event)
        note = None if refusal else _unchecked_paths(pipeline.push, event)
    elif event.name == "pull_request":
        refusal = _pull_request_refusal(pipeline, event)
    else:
        refusal = f"pipelines do not run on {event.name} events"
    return Verdict(pipeline, refusal is None, refusal or note or TRIGGERS_MATCH)


def _push_refusal(trigger: PushTrigger | None, event: Event) -> str | None:
    if trigger is None:
        return "no push trigger"
    if event.deleted and not trigger.deletions:
        return "the push deletes a branch or tag (set deletions: true to run on those)"
    filters_branches = trigger.branches is not None or bool(trigger.branches_ignore)
    filters_tags = trigger.tags is not None or bool(trigger.tags_ignore)
    if (name := branch_of(event.ref)) is not None:
        if filters_tags and not filters_branches:
            # GitHub's rule: a trigger that filters only tags never runs on branches.
            return f"branch {name}: the push trigger lists only tags"
        refusal = _filter_refusal("branch", name, trigger.branches, trigger.branches_ignore)
        return refusal or _paths_refusal(trigger, event)
    if (name := tag_of(event.ref)) is not None:
        if filters_branches and not filters_tags:
            return f"tag {name}: the push trigger lists only branches"
        return _filter_refusal("tag", name, trigger.tags, trigger.tags_ignore)
    return f"ref {event.ref} is neither a branch nor a tag"


def _pull_request_refusal(pipeline: Pipeline, event: Event) -> str | None:
    trigger = pipeline.pull_request
    if trigger is None:
        return "no pull_request trigger"
    if event.action not in trigger.types:
        return f"action {event.action} is not in types ({', '.join(sorted(trigger.types))})"
    if is_from_fork(event) and not pipeline.forks:
        source = event.head_repository or "a deleted fork"
        return f"the pull request comes from {source} (set forks: true to run forks, secretless)"
    return _filter_refusal("base branch", event.base_ref, trigger.branches, trigger.branches_ignore)


FILTER_KEYS = {"branch": "branches", "base branch": "branches", "tag": "tags"}


def _filter_refusal(
    what: str, name: str, include: tuple[Glob, ...] | None, ignore: tuple[Glob, ...]
) -> str | None:
    key = FILTER_KEYS[what]
    if include is not None and not matches_any(include, name):
        patterns = ", ".join(glob.pattern for glob in include)
        return f"{what} {name} matches none of {key} ({patterns})"
    if ignore and matches_any(ignore, name):
        return f"{what} {name} matches {key}_ignore"
    return None


UNKNOWN_FILES_NOTES = {
    NO_COMMITS: "paths: the push lists no commits, so it runs",
    COMMITS_CAPPED: "paths: the push may hold more commits than the payload lists, so it runs",
    FILES_CAPPED: "paths: a commit may change more files than the payload lists, so it runs",
    COMMITS_UNREADABLE: "paths: the payload's commit list cannot be read, so it runs",
}
UNKNOWN_FILES_NOTE = "paths: the changed files are unknown, so it runs"


def _unchecked_paths(trigger: PushTrigger | None, event: Event) -> str | None:
    """Why the trigger's path filters are not checked for this push, which then runs."""
    if trigger is None or (trigger.paths is None and not trigger.paths_ignore):
        return None
    if tag_of(event.ref) is not None:
        return "paths: not checked for a tag push (as on GitHub), so it runs"
    if event.deleted:
        return "paths: not checked for a deletion, so it runs"
    if event.changed_files is None:
        return UNKNOWN_FILES_NOTES.get(event.changed_files_unknown, UNKNOWN_FILES_NOTE)
    return None


def _paths_refusal(trigger: PushTrigger, event: Event) -> str | None:
    if trigger.paths is None and not trigger.paths_ignore:
        return None
    files = event.changed_files
    if files is None or _unchecked_paths(trigger, event):
        return None  # it runs, and the verdict's note says why
    if not files:
        return "paths: the push's commits change no files"
    if trigger.paths is not None:
        if any(matches_any(trigger.paths, name) for name in files):
            return None
        patterns = _patterns(trigger.paths)
        if len(files) == 1:
            return f"paths: the one changed file, {files[0]}, does not match paths ({patterns})"
        return f"paths: none of the {len(files)} changed files matches paths ({patterns})"
    if not all(matches_any(trigger.paths_ignore, name) for name in files):
        return None
    patterns = _patterns(trigger.paths_ignore)
    if len(files) == 1:
        return f"paths: the one changed file, {files[0]}, matches paths_ignore ({patterns})"
    return f"paths: all {len(files)} changed files match paths_ignore ({patterns})"


def _patterns(globs: tuple[Glob, ...]) -> str:
    return ", ".join(glob.pattern for glob in globs)
