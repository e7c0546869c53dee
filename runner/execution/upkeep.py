"""A worker's upkeep beside its runs: saying it is alive, and reaping what dead processes
left (their runs marked lost, their steps' process groups on this host killed, their
outgoing requests given new tasks, the deliveries a web process stored but never
processed processed from their stored payload), and skipping the runs that waited for
approval too long."""

import logging
import signal
import socket
import threading
import time

from django.conf import settings
from django.db import close_old_connections

from runner.execution.processes import kill_group
from runner.execution.sandbox import sandbox_problem
from runner.models import WorkerSeen
from runner.outgoing.queue import requeue_lost
from runner.runs.lifecycle import expire_approvals
from runner.runs.processing import process_stranded
from runner.runs.reaper import reap_stale_runs, requeue_unclaimed

logger = logging.getLogger(__name__)


def reap() -> None:
    """Mark runs of dead workers lost, end the process groups they left here, and give
    the runs they took up but never claimed to new tasks."""
    requeue_unclaimed()
    for reaped in reap_stale_runs():
        if reaped.worker.rsplit(":", 1)[0] != socket.gethostname():
            continue
        for group in reaped.process_groups:
            # The step ran in its own session, so its group outlived its worker.
            kill_group(group, signal.SIGKILL)
            logger.warning("killed process group %s left by a dead worker", group)


def look_after(name: str, queues: str) -> None:
    """Say this worker is alive, and whether it can sandbox steps, every
    WORKER_BEAT_SECONDS, and every REAP_SECONDS reap runs and outgoing requests that dead
    workers left, process deliveries that dead web processes left `received` and skip
    runs whose approval expired, until the process ends."""
    stop = threading.Event()
    next_reap = time.monotonic() + settings.REAP_SECONDS
    while not stop.wait(min(settings.WORKER_BEAT_SECONDS, settings.REAP_SECONDS)):
        try:
            WorkerSeen.beat(name, queues, sandbox_problem())
            if time.monotonic() >= next_reap:
                next_reap = time.monotonic() + settings.REAP_SECONDS
                reap()
                requeue_lost()
                process_stranded()
                expire_approvals()
        except Exception:
            logger.exception("worker bookkeeping failed; trying again later")
        finally:
            close_old_connections()
