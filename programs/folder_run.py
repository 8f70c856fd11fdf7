"""A folder (or files) → a JSONL results file: the main use case, as library functions.

`extract_folder` is the whole job in one call (it starts the runtime when given no URL);
`extract_files` runs a driver the caller built (the CLI, with its progress bar).

Documents already done in the results file (same content hash, --resume) are skipped; every
finished document is on disk before the next one is written; the file is compacted to one record
per document at the end. `on_progress` sees the running totals after each document.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from forkpoint.programs.batch import BatchDriver, BatchOptions
from forkpoint.programs.documents.document import Document, folder_files, from_text, read_path
from forkpoint.programs.results.file import ResultsFile
from forkpoint.programs.results.record import BatchSummary, DocumentResult
from forkpoint.programs.target import resolve_target
from forkpoint.programs.tasks.registry import get_task
from forkpoint.programs.tasks.task import ExtractionTask


def extract_files(
    driver: BatchDriver,
    files: Sequence[Path],
    results: ResultsFile,
    *,
    json_field: str | None = None,
    on_progress: Callable[[BatchSummary], None] | None = None,
) -> BatchSummary:
    """Extract every document of `files` into `results`; returns the run's totals."""
    summary = BatchSummary()

    def to_extract() -> Iterator[Document]:
        for path in files:
            for doc in read_path(path, json_field=json_field):
                if results.is_done(doc):
                    summary.skipped += 1
                    if on_progress:
                        on_progress(summary)
                else:
                    yield doc

    def count(result: DocumentResult) -> None:  # as each finishes, in any order
        summary.add(result)
        if on_progress:
            on_progress(summary)

    summary.prefix_tokens = driver.warm()
    started = time.perf_counter()
    with results.open() as sink:
        for result in driver.run(to_extract(), on_result=count):  # in input order
            sink.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
            sink.flush()  # every finished document is on disk before the next one
    results.compact()
    summary.wall_seconds = time.perf_counter() - started
    return summary


def extract(
    task: ExtractionTask | str,
    documents: Iterable[str | tuple[str, str]],
    *,
    sglang_url: str | None = None,
    profile: str = "cpu-small",
    chat_format: str | None = None,
    concurrency: int | None = None,
) -> list[DocumentResult]:
    """Texts (or (name, text) pairs) → one result each, in order, `data` an instance of the
    task's model. Starts the profile's runtime for the call unless `sglang_url` is given."""
    docs = [
        from_text(*doc) if isinstance(doc, tuple) else from_text(f"document-{i + 1:04d}", doc)
        for i, doc in enumerate(documents)
    ]
    with _driver(task, sglang_url, profile, chat_format, concurrency) as driver:
        driver.warm()
        return list(driver.run(iter(docs)))


@contextlib.contextmanager
def _driver(
    task: ExtractionTask | str,
    sglang_url: str | None,
    profile: str,
    chat_format: str | None,
    concurrency: int | None,
) -> Iterator[BatchDriver]:
    """A driver for `task` on `sglang_url`, or on the profile's runtime started (and stopped
    after) for the call; the chat format is checked against the served model."""
    from forkpoint.runtime.launcher import RuntimeServer
    from forkpoint.runtime.profiles import get_profile

    chosen = get_task(task) if isinstance(task, str) else task
    launch = get_profile(profile)
    with contextlib.ExitStack() as stack:
        launched = None
        if sglang_url is None:
            sglang_url, launched = stack.enter_context(RuntimeServer(launch)).url, launch
        target = resolve_target(sglang_url, launched=launched, chat_format=chat_format)
        options = BatchOptions(concurrency=concurrency or launch.client_concurrency)
        yield BatchDriver(target, chosen, options)


def extract_folder(
    folder: Path | str,
    task: ExtractionTask | str,
    out: Path | str,
    *,
    sglang_url: str | None = None,
    profile: str = "cpu-small",
    chat_format: str | None = None,
    concurrency: int | None = None,
    resume: bool = False,
    json_field: str | None = None,
    on_progress: Callable[[BatchSummary], None] | None = None,
) -> BatchSummary:
    """`forkpoint extract` as one call: every document of `folder` (or one file) → JSONL `out`.

    `task` is an ExtractionTask or a built-in task's name. Without `sglang_url` the profile's
    runtime is started for the call and stopped after it; with one, the prompt's chat format is
    the served model's unless `chat_format` says otherwise (a mismatch is a ProfileError)."""
    files = folder_files(Path(folder))
    results = ResultsFile(Path(out), resume=resume)
    with _driver(task, sglang_url, profile, chat_format, concurrency) as driver:
        return extract_files(driver, files, results, json_field=json_field, on_progress=on_progress)
