"""forkpoint: structured extraction over many documents on SGLang.

    from forkpoint import ExtractionTask, extract

The public API is forkpoint.programs' (see its docstring), re-exported here on first use: this
package is also the shared kernel at the bottom of the layers (`forkpoint.errors`), which
runtime/ imports without pulling in programs/.
"""

from __future__ import annotations

from importlib import import_module, metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forkpoint.programs import (
        BatchDriver,
        BatchOptions,
        BatchSummary,
        Document,
        DocumentResult,
        Example,
        ExtractionTask,
        Extractor,
        ForkpointError,
        Gateway,
        RemoteJob,
        ResultRecord,
        Target,
        extract,
        extract_files,
        extract_folder,
        get_task,
        load_task,
        schema_task,
    )

# forkpoint.programs.__all__, spelt out: reading it from there would import programs/.
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


def _version() -> str:
    try:
        return metadata.version("forkpoint")
    except metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0+unknown"


__version__ = _version()


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("forkpoint.programs"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
