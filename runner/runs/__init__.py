"""The Run lifecycle: every change of a run's state, each one transaction that also writes
what follows from it (outgoing requests, waiting runs released or skipped, the next run of
a concurrency group); needs, concurrency groups, the reaper, re-runs and replays. Imports
runner.outgoing, runner.models and runner.config."""
