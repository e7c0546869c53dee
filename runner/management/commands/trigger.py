"""Build a push or pull_request delivery locally and match it as if GitHub had sent it.

For trying pipelines.yaml before pushing: `--dry-run` only says which pipelines would start
and why the others would not; without it the delivery is stored (delivery id
`local-<uuid>`, hook id `local`) and processed by the receiver's own intake, so it shows
in admin and queues real runs. It is a trusted local command: no HTTP, no signature.
"""

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from runner.config.github import (
    BRANCH_PREFIX,
    REPOSITORY_NAME,
    BadDelivery,
    Event,
    branch_of,
    event_from_payload,
    is_commit_sha,
)
from runner.config.matching import is_from_fork, match
from runner.config.repositories import AmbiguousPipelines, Config
from runner.management.commands import _common
from runner.models import Delivery
from runner.outgoing.reconcile import LOCAL_HOOK_ID
from runner.receiver import intake

EVENTS = ("push", "pull_request")
LOCAL_PREFIX = "local-"
NO_SHA = "0" * 40
# Options that belong to one event only; given for the other, they are refused.
PUSH_ONLY = ("ref", "before", "changed")
PULL_REQUEST_ONLY = ("action", "base", "head", "number", "fork")


class Command(BaseCommand):
    help = (
        "Build a push or pull_request delivery for REPO locally and process it as if GitHub "
        "had sent it (--dry-run: only show which pipelines would start)."
    )
    # Local and trusted: the webhook secret's check has nothing to say about it.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("repository", help="OWNER/REPO")
        parser.add_argument("event", help="push or pull_request")
        parser.add_argument("--sha", help="the commit (40 hex digits); required unless --dry-run")
        parser.add_argument("--actor", help="who pushed or opened it (default: $USER)")
        push = parser.add_argument_group("push")
        push.add_argument("--ref", help="branch (main, refs/heads/main) or refs/tags/NAME")
        push.add_argument("--before", help="the commit the ref pointed to before (default: new)")
        push.add_argument("--changed", nargs="+", metavar="FILE", help="files the push changes")
        pull = parser.add_argument_group("pull_request")
        pull.add_argument("--action", help="opened (default), synchronize, reopened, closed...")
        pull.add_argument("--base", help="the branch it merges into (default: main)")
        pull.add_argument("--head", help="the branch it comes from")
        pull.add_argument("--number", type=int, help="the pull request number (default: 1)")
        pull.add_argument("--fork", metavar="OWNER/REPO", help="the head branch is in this fork")
        _common.add_pipelines_argument(parser)
        parser.add_argument(
            "--dry-run", action="store_true", help="only show which pipelines would start"
        )

    def handle(self, *args, repository: str, event: str, **options) -> None:
        dry_run = options["dry_run"]
        _check_options(repository, event, options)
        sha = options["sha"] or NO_SHA
        actor = options["actor"] or _common.login()
        if event == "push":
            payload = push_payload(
                repository,
                ref=options["ref"],
                sha=sha,
                before=options["before"] or NO_SHA,
                actor=actor,
                changed=options["changed"],
            )
        else:
            payload = pull_request_payload(
                repository,
                action=options["action"] or "opened",
                sha=sha,
                base=options["base"] or "main",
                head=options["head"],
                number=options["number"] if options["number"] is not None else 1,
                fork=options["fork"],
                actor=actor,
            )
        delivery_id = "dry-run" if dry_run else f"{LOCAL_PREFIX}{uuid.uuid4()}"
        try:
            built = event_from_payload(event, payload, delivery_id, LOCAL_HOOK_ID)
        except BadDelivery as error:
            raise CommandError(str(error)) from None
        # A dry run reads no secret: one that is not set here is only a warning.
        config = _common.config(options["pipelines"], self.stderr, warn_of_unset=dry_run)
        self._show_verdicts(built, config)
        if event == "push" and not options["changed"] and _filters_paths(config, repository):
            self.stdout.write("(path filters can be tried with --changed FILE ...)")
        if dry_run:
            self.stdout.write("dry run: nothing stored, nothing queued")
            return
        answer = intake.receive(built, config)
        if answer.status == Delivery.Status.FAILED:
            raise CommandError(f"delivery {answer.delivery_id} {answer.status}: {answer.detail}")
        self.stdout.write(f"delivery {answer.delivery_id} {answer.status}: {answer.detail}")
        if answer.runs:
            self.stdout.write(f"queued runs {', '.join(str(pk) for pk in answer.runs)}")
        else:
            self.stdout.write("nothing queued")

    def _show_verdicts(self, event: Event, config: Config) -> None:
        repository = config.repository(event.repository)
        if repository is None:
            self.stdout.write(f"no entry in {config.source} covers {event.repository}")
            return
        try:
            verdicts = match(config, event)
        except AmbiguousPipelines as error:
            raise CommandError(str(error)) from None
        fork = f" from the fork {event.head_repository}" if is_from_fork(event) else ""
        what = event.name if event.pr_number is None else f"pull_request #{event.pr_number}"
        action = f" {event.action}" if event.action else ""
        self.stdout.write(
            f"{what}{action}{fork} to {event.repository} {event.ref} at {event.sha[:12]}, "
            f"via {repository.patterns}:"
        )
        for verdict in verdicts:
            self.stdout.write(f"  {verdict}")


def _filters_paths(config: Config, repository: str) -> bool:
    covered = config.repository(repository)
    return covered is not None and any(
        pipeline.push is not None
        and (pipeline.push.paths is not None or bool(pipeline.push.paths_ignore))
        for entry in covered.entries
        for pipeline in entry.pipelines
    )


def _check_options(repository: str, event: str, options: dict[str, Any]) -> None:
    if event not in EVENTS:
        raise CommandError(
            f"unknown event {event!r}: trigger builds push and pull_request deliveries "
            "(the only events hookrunner runs pipelines on)"
        )
    if not REPOSITORY_NAME.fullmatch(repository):
        raise CommandError(f"{repository!r} is not OWNER/REPO")
    others = PULL_REQUEST_ONLY if event == "push" else PUSH_ONLY
    given = [f"--{name}" for name in others if options[name] is not None]
    if given:
        raise CommandError(f"not for {event} events: {', '.join(given)}")
    if event == "push" and not options["ref"]:
        raise CommandError("a push needs --ref (a branch name, refs/heads/NAME or refs/tags/NAME)")
    if event == "pull_request" and not options["head"]:
        raise CommandError("a pull_request needs --head (the branch it comes from)")
    for name in ("sha", "before"):
        if options[name] is not None and not is_commit_sha(options[name]):
            raise CommandError(f"--{name} {options[name]!r} is not a commit id (40 hex digits)")
    if options["fork"] is not None and not REPOSITORY_NAME.fullmatch(options["fork"]):
        raise CommandError(f"--fork {options['fork']!r} is not OWNER/REPO")
    if options["number"] is not None and options["number"] < 1:
        raise CommandError("--number must be a positive pull request number")
    if not options["sha"] and not options["dry_run"]:
        # A run checks the commit out (and reports its status on it): a made-up one fails.
        raise CommandError("--sha is required to queue runs (only --dry-run can go without)")


def full_ref(ref: str) -> str:
    """refs/... as given; a short name is a branch."""
    return ref if ref.startswith("refs/") else BRANCH_PREFIX + ref


def push_payload(
    repository: str, ref: str, sha: str, before: str, actor: str, changed: list[str] | None
) -> dict[str, Any]:
    """A push payload shaped like GitHub's, with one commit changing `changed` if given."""
    ref = full_ref(ref)
    commit = {
        "id": sha,
        "tree_id": NO_SHA,
        "distinct": True,
        "message": "(built by manage.py trigger)",
        "timestamp": "",
        "url": f"https://github.com/{repository}/commit/{sha}",
        "author": {"name": actor, "email": "", "username": actor},
        "committer": {"name": actor, "email": "", "username": actor},
        "added": [],
        "removed": [],
        "modified": list(changed or []),
    }
    return {
        "ref": ref,
        "before": before,
        "after": sha,
        "repository": _repository(repository),
        "pusher": {"name": actor, "email": ""},
        "sender": _user(actor),
        "created": before == NO_SHA,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"https://github.com/{repository}/compare/{before[:12]}...{sha[:12]}",
        # A tag, or a branch created at an existing commit, lists no commits.
        "commits": [commit] if changed and branch_of(ref) is not None else [],
        "head_commit": commit,
    }


def pull_request_payload(
    repository: str,
    action: str,
    sha: str,
    base: str,
    head: str,
    number: int,
    fork: str | None,
    actor: str,
) -> dict[str, Any]:
    """A pull_request payload shaped like GitHub's; `fork` puts the head branch there."""
    base = base.removeprefix(BRANCH_PREFIX)
    head = head.removeprefix(BRANCH_PREFIX)
    head_repository = fork or repository
    head_owner = head_repository.split("/")[0]
    base_owner = repository.split("/")[0]
    html_url = f"https://github.com/{repository}/pull/{number}"
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "url": f"https://api.github.com/repos/{repository}/pulls/{number}",
            "html_url": html_url,
            "number": number,
            "state": "closed" if action == "closed" else "open",
            "title": "(built by manage.py trigger)",
            "user": _user(actor),
            "draft": False,
            "merged": False,
            "head": {
                "label": f"{head_owner}:{head}",
                "ref": head,
                "sha": sha,
                "user": _user(head_owner),
                "repo": _repository(head_repository, fork=fork is not None),
            },
            "base": {
                "label": f"{base_owner}:{base}",
                "ref": base,
                "sha": NO_SHA,
                "user": _user(base_owner),
                "repo": _repository(repository),
            },
        },
        "repository": _repository(repository),
        "sender": _user(actor),
    }


def _repository(full_name: str, fork: bool = False) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": {"name": owner, "login": owner},
        "html_url": f"https://github.com/{full_name}",
        "fork": fork,
        "url": f"https://api.github.com/repos/{full_name}",
        "git_url": f"git://github.com/{full_name}.git",
        "ssh_url": f"git@github.com:{full_name}.git",
        "clone_url": f"https://github.com/{full_name}.git",
        "default_branch": "main",
    }


def _user(login: str) -> dict[str, Any]:
    return {"login": login, "html_url": f"https://github.com/{login}", "type": "User"}
