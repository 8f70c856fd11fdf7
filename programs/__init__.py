"""forkpoint's Python API: what to ask (a task), and the main job as one call.

    from forkpoint.programs import ExtractionTask, Example, Gateway, extract, extract_folder

    summary = extract_folder("inbox/", "invoices", "results.jsonl")   # starts cpu-small
    summary = extract_folder("inbox/", MY_TASK, "out.jsonl", sglang_url="http://gpu-1:30000")
    results = extract(MY_TASK, ["text one", "text two"])               # typed, in order
    job = Gateway("http://gpu-1:8000", api_key=KEY).submit(MY_TASK, Path("inbox/"))

Names that need SGLang's frontend (and so torch) are imported on first use, so importing this
package stays cheap for the CLI's `--help`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from forkpoint.errors import ForkpointError
from forkpoint.programs.documents.document import Document
from forkpoint.programs.results.record import BatchSummary, DocumentResult, ResultRecord
from forkpoint.programs.tasks.registry import get_task, load_task
from forkpoint.programs.tasks.task import Example, ExtractionTask, schema_task

if TYPE_CHECKING:
    from forkpoint.programs.batch import BatchDriver, BatchOptions
    from forkpoint.programs.extractor import Extractor
    from forkpoint.programs.folder_run import extract, extract_files, extract_folder
    from forkpoint.programs.remote import Gateway, RemoteJob
    from forkpoint.programs.target import Target

_LAZY = {
    "BatchDriver": "forkpoint.programs.batch",
    "BatchOptions": "forkpoint.programs.batch",
    "Extractor": "forkpoint.programs.extractor",
    "Gateway": "forkpoint.programs.remote",
    "RemoteJob": "forkpoint.programs.remote",
    "Target": "forkpoint.programs.target",
    "extract": "forkpoint.programs.folder_run",
    "extract_files": "forkpoint.programs.folder_run",
    "extract_folder": "forkpoint.programs.folder_run",
}

__all__ = [
    "BatchDriver",
    "BatchOptions",
    "BatchSummary",
    "Document",
    "DocumentResult",
    "Example",
    "ExtractionTask",
    "Extractor",
    "ForkpointError",
    "Gateway",
    "RemoteJob",
    "ResultRecord",
    "Target",
    "extract",
    "extract_files",
    "extract_folder",
    "get_task",
    "load_task",
    "schema_task",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
