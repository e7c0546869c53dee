"""What hookrunner is told, read once and held as frozen, typed objects: pipelines.yaml
(reading with line numbers, schema, triggers and globs, hot reload, system checks), the
GitHub events its triggers match and how GitHub signs them, settings from the
environment, hookrunner's own paths (which no step sees), and the words shared by every
message. The bottom layer: imports nothing
else of runner's, and never the models."""
