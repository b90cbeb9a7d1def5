"""Tasks: what a run optimises and measures. Each dataset source declares its task."""

from visionstudy.tasks import classification, regression  # noqa: F401  (registers the built-in tasks)
from visionstudy.tasks.base import (
    TASKS,
    Task,
    get_task,
    list_tasks,
    task_of,
    task_of_dataset,
    task_of_metrics,
)

__all__ = ["TASKS", "Task", "get_task", "list_tasks", "task_of", "task_of_dataset", "task_of_metrics"]
