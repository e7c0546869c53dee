"""Queued tasks are stored by the path of their function; the code moved into packages,
so tasks queued before the move are pointed at the new paths."""

from django.db import migrations

MOVED = {
    "runner.tasks.execute_run": "runner.execution.tasks.execute_run",
    "runner.outgoing.send_outgoing": "runner.outgoing.queue.send_outgoing",
}


def point_to(paths: dict[str, str]):
    def move(apps, schema_editor) -> None:
        tasks = apps.get_model("django_tasks_database", "DBTaskResult").objects
        for old, new in paths.items():
            tasks.filter(task_path=old).update(task_path=new)

    return move


class Migration(migrations.Migration):
    dependencies = [
        ("runner", "0009_waiting_runs_have_no_task"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [
        migrations.RunPython(
            point_to(MOVED), point_to({new: old for old, new in MOVED.items()}), elidable=True
        )
    ]
