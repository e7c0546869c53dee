"""Every change of a Run's state, and what follows from each.

A run is created queued (with its task), or waiting: for the pipelines it needs, then for
a person's approval, then for its environment to be unlocked, then for its turn in its
concurrency group (Stage: each wait is passed in that order, those that do not apply
skipped). A worker claims a queued run (or, finding its environment locked meanwhile,
puts it back to wait), starts its steps one by one and finishes it; a person approves,
rejects or cancels it; the reaper marks it lost; an approval expires; a person runs it
again, starts a pipeline by hand, or rolls an environment back. Each of these is one
write transaction that also writes everything that follows: the run's commit statuses,
GitHub deployment statuses and notifications (Outgoing rows with their tasks), the
waiting runs its end releases or skips, and the next run of its concurrency group made
runnable.
A process killed between two writes therefore leaves nothing stranded: every change is
there with its consequences, or none of it is.

Its modules: waits (what a run waits for, in order, and moving it on), starting (new
runs), working (a worker's claim and steps), decisions (people's approvals and locks),
ending (every end and what follows it). Callers use the names below.
"""

from runner.runs.lifecycle.decisions import approve, expire_approvals, lock, reject, unlock
from runner.runs.lifecycle.ending import Cancel, cancel, finish, lose
from runner.runs.lifecycle.starting import create_manual_run, create_runs, rerun
from runner.runs.lifecycle.working import claim, hand_back, start_steps, step_ended, step_started

__all__ = [
    "Cancel",
    "approve",
    "cancel",
    "claim",
    "create_manual_run",
    "create_runs",
    "expire_approvals",
    "finish",
    "hand_back",
    "lock",
    "lose",
    "reject",
    "rerun",
    "start_steps",
    "step_ended",
    "step_started",
    "unlock",
]
