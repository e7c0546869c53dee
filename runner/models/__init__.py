"""The database: one module per concern, holding data and queries, never workflow (what
follows a change of state is runner.runs'). Imports only runner.config."""

from runner.models.db import clipped
from runner.models.deliveries import (
    RECEIVED_COLUMNS,
    Delivery,
    DroppedRejections,
    RejectedRequest,
)
from runner.models.deployments import Decision, EnvironmentLock
from runner.models.outgoing import Outgoing
from runner.models.redactions import Redaction
from runner.models.runs import ConcurrencyGroup, LogChunk, Run, Step
from runner.models.workers import WorkerSeen

__all__ = [
    "RECEIVED_COLUMNS",
    "ConcurrencyGroup",
    "Decision",
    "Delivery",
    "DroppedRejections",
    "EnvironmentLock",
    "LogChunk",
    "Outgoing",
    "Redaction",
    "RejectedRequest",
    "Run",
    "Step",
    "WorkerSeen",
    "clipped",
]
