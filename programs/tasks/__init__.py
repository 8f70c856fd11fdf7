"""The built-in extraction tasks, by name."""

from forkpoint.programs.task import ExtractionTask
from forkpoint.programs.tasks import contacts, invoices, support_tickets

BUILTIN_TASKS: dict[str, ExtractionTask] = {
    module.TASK.name: module.TASK for module in (invoices, contacts, support_tickets)
}
