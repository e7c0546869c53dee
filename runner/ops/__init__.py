"""Running hookrunner for months: retention (purge), /metrics, /healthz, and the local
set-up of `manage.py serve`. Imports runner.models and runner.config."""
