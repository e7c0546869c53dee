"""The webhook: the view, the body and its signature, which secrets are accepted, storing
and deduplicating each delivery, recording refusals. Hands accepted deliveries to
runner.runs; never imports runner.execution."""
