"""A variant of the built-in contacts task (no few-shot examples), for `eval --compare`."""

from dataclasses import replace

from forkpoint.programs.tasks.registry import get_task

TASK = replace(get_task("contacts"), name="contacts-zero-shot", examples=())
