"""What hookrunner sends: commit statuses, GitHub deployments and notifications about runs
(their bodies, their tasks, retries and rate limits), GitHub's REST API, and reconcile.
Imports runner.models and runner.config."""
