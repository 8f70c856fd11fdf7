"""Your own task on a gateway across the LAN, from Python: submit, follow, typed results back.

    from forkpoint.programs import Gateway

    gateway = Gateway("http://gpu-1:8000", api_key="...")      # or $FORKPOINT_API_KEY
    job = gateway.submit(MY_TASK, Path("inbox/"))               # a folder, files, or texts
    for result in job.results(on_progress=print):               # (done, total) as they come
        print(result.name, result.status, result.data)         # data: a MY_TASK model instance

A task object travels as data (programs/tasks/spec.py): the gateway builds the same fork-point
prefix from it. The model's own validators cannot run there, so each answer is validated into
the model here; one that fails is `invalid`, with the validator's message. `job.results()`
survives a dropped connection (it asks again from the next document), and `gateway.job(id,
task)` follows a job an earlier process submitted.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from forkpoint.errors import RequestError, RuntimeUnavailable
from forkpoint.programs.documents.document import folder_files
from forkpoint.programs.gateway_client import GatewayClient
from forkpoint.programs.results.record import DocumentResult
from forkpoint.programs.tasks.spec import TaskSpec
from forkpoint.programs.tasks.task import ExtractionTask

Documents = Path | Iterable[str | tuple[str, str] | Path]
Progress = Callable[[int, int], None]
RECONNECTS = 5


class Gateway:
    """A forkpoint gateway (`forkpoint serve`) at `url`."""

    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 60.0) -> None:
        self.url = url
        self.http = GatewayClient(url, api_key or os.environ.get("FORKPOINT_API_KEY"), timeout)

    def submit(
        self,
        task: ExtractionTask | str,
        documents: Documents,
        *,
        idempotency_key: str | None = None,
    ) -> RemoteJob:
        """Start a job: `task` (yours, or a built-in's name) over `documents` — a folder, file
        paths (uploaded; the gateway reads PDF, Word, HTML, text, JSON/JSONL), texts, or
        (name, text) pairs."""
        choice = task_choice(task)
        texts, files = _split(documents)
        if files:
            status = self.http.submit_files(choice, files, idempotency_key=idempotency_key)
        else:
            status = self.http.submit(choice, texts, idempotency_key=idempotency_key)
        return RemoteJob(self, status["id"], task, status["total"])

    def job(self, job_id: str, task: ExtractionTask | str) -> RemoteJob:
        """A job submitted earlier (by this process or another): follow it again."""
        return RemoteJob(self, job_id, task, self.http.status(job_id)["total"])

    def extract(
        self, task: ExtractionTask | str, documents: Documents, on_progress: Progress | None = None
    ) -> list[DocumentResult]:
        """Submit and wait: every document's result, in document order."""
        return list(self.submit(task, documents).results(on_progress=on_progress))


@dataclasses.dataclass
class RemoteJob:
    gateway: Gateway
    id: str
    task: ExtractionTask | str
    total: int
    reconnects: int = 0  # streams that dropped and were asked again from the next document

    def status(self) -> dict[str, Any]:
        return self.gateway.http.status(self.id)

    def cancel(self) -> dict[str, Any]:
        return self.gateway.http.cancel(self.id)

    def results(
        self, *, start: int = 0, on_progress: Progress | None = None
    ) -> Iterator[DocumentResult]:
        """Results in document order from document `start` on, as the gateway records them,
        each validated into the task's model. A dropped connection is retried from the next
        document (up to RECONNECTS times in a row, with backoff)."""
        index, failures = start, 0
        while index < self.total:
            try:
                for record in self.gateway.http.results(self.id, start=index):
                    yield validated(DocumentResult.from_json(record, index), self.task)
                    index, failures = index + 1, 0
                    if on_progress:
                        on_progress(index, self.total)
                if self.status()["state"] == "cancelled":
                    return
            except RuntimeUnavailable:
                failures += 1
                self.reconnects += 1
                if failures > RECONNECTS:
                    raise
                time.sleep(min(30.0, 2.0**failures))


def task_choice(task: ExtractionTask | str) -> dict[str, Any]:
    """How a job request names its task: a built-in by name, anything else as its definition."""
    if isinstance(task, str):
        return {"task": task}
    return {"task_definition": TaskSpec.from_task(task).model_dump(mode="json", by_alias=True)}


def validated(result: DocumentResult, task: ExtractionTask | str) -> DocumentResult:
    """`result` with its data as an instance of the task's model; `invalid` if the model's own
    validators refuse it (they ran nowhere else). A built-in's name: data stays JSON."""
    model = None if isinstance(task, str) else task.output_model
    if model is None or not result.has_data:
        return result
    try:
        return dataclasses.replace(result, data=model.model_validate(result.data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or model.__name__
        error = f"the answer fails {model.__name__}'s validation at {where}: {first['msg']}"
        return dataclasses.replace(result, status="invalid", error=error, raw=str(result.data))


def _split(documents: Documents) -> tuple[list[tuple[str, str]], list[Path]]:
    """(texts, files): a folder or paths are files to upload; strings and pairs are texts."""
    if isinstance(documents, Path):
        return [], folder_files(documents) if documents.is_dir() else [documents]
    texts: list[tuple[str, str]] = []
    files: list[Path] = []
    for i, document in enumerate(documents):
        if isinstance(document, Path):
            files.append(document)
        elif isinstance(document, tuple):
            texts.append(document)
        else:
            texts.append((f"document-{i + 1:04d}", document))
    if texts and files:
        raise RequestError(
            "one job takes either texts or files, not both",
            hint="submit them as two jobs, or read the files into texts",
        )
    if not texts and not files:
        raise RequestError("no documents to submit")
    return texts, files
