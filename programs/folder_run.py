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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from forkpoint.programs.batch import BatchDriver, BatchOptions
from forkpoint.programs.documents.document import Document, folder_files, read_path
from forkpoint.programs.prompt import task_prompt
from forkpoint.programs.results.file import ResultsFile
from forkpoint.programs.results.record import BatchSummary, DocumentResult
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
    from forkpoint.runtime.launcher import RuntimeServer
    from forkpoint.runtime.profiles import get_profile
    from forkpoint.runtime.served_model import check_chat_format

    chosen = get_task(task) if isinstance(task, str) else task
    files = folder_files(Path(folder))
    results = ResultsFile(Path(out), resume=resume)
    launch = get_profile(profile)
    concurrency = concurrency or launch.client_concurrency
    with contextlib.ExitStack() as stack:
        if sglang_url is None:
            sglang_url = stack.enter_context(RuntimeServer(launch)).url
            chat_format = chat_format or launch.chat_format
        chat_format = check_chat_format(sglang_url, chat_format)
        prompt = task_prompt(chosen, chat_format)
        driver = BatchDriver(sglang_url, prompt, BatchOptions(concurrency=concurrency))
        return extract_files(driver, files, results, json_field=json_field, on_progress=on_progress)
