"""The worker: claiming a run, its workspace and checkout, each step as a process group
in its bubblewrap sandbox with its environment and its output streamed to the database.
Changes a run's state only through runner.runs; never imports runner.receiver or the
admin."""
