"""Finding a task: a built-in by name, or a user's own as `module.path:ATTRIBUTE`."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from forkpoint.errors import TaskError
from forkpoint.programs.tasks.task import ExtractionTask


def builtin_tasks() -> dict[str, ExtractionTask]:
    """The built-in tasks by name (imported on first use)."""
    from forkpoint.programs.tasks import contacts, invoices, support_tickets

    return {module.TASK.name: module.TASK for module in (invoices, contacts, support_tickets)}


def get_task(name: str) -> ExtractionTask:
    tasks = builtin_tasks()
    if name not in tasks:
        known = ", ".join(sorted(tasks))
        raise TaskError(f"no built-in task named {name!r}", hint=f"known tasks: {known}")
    return tasks[name]


def load_task(spec: str) -> ExtractionTask:
    """Load `package.module:NAME` or `path/to/file.py:NAME`; NAME must be an ExtractionTask."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise TaskError(f"{spec!r} is not MODULE:NAME", hint="e.g. my_tasks.orders:TASK")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            loader = importlib.util.spec_from_file_location(path.stem, path)
            if loader is None or loader.loader is None or not path.is_file():
                raise TaskError(f"no Python file at {path}")
            module = importlib.util.module_from_spec(loader)
            sys.modules[path.stem] = module
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except TaskError:
        raise
    except Exception as exc:
        raise TaskError(f"cannot import {module_name!r}: {exc}") from exc
    task = getattr(module, attribute, None)
    if not isinstance(task, ExtractionTask):
        found = type(task).__name__ if task is not None else "nothing"
        raise TaskError(f"{spec} is {found}, not an ExtractionTask")
    return task
