"""OpenAI batches as forkpoint jobs: created from an input file, shown in OpenAI's shape, their
output and error files written once every line has its answer.

A batch is one grouped job (api/job_task.py): each request a document, its `custom_id` the
document's name, its group's task stored beside it, so everything a job has a batch has —
durable before the 201, resumed after `kill -9` with every line answered once, the fair queue,
ownership by key, quotas, retention, NGRAM drafting from the batch's own documents. The job's
`batch` record holds what OpenAI's object shows that a job does not: the input file, endpoint,
window, metadata, validation errors, and the files written for it.

Status: `failed` (validation), `in_progress` while lines run, `finalizing` while the files are
written, `completed`; a cancel is `cancelling` until no worker holds a line of it, then
`cancelled` with the lines finished by then in its files. The files are written on the first
look after that (a GET or a list): a restarted gateway writes them again under the same ids.
forkpoint does not expire batches: a batch past its 24 h window runs on to the end.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from forkpoint.api.auth import Caller
from forkpoint.api.batch_input import ENDPOINTS, REFUSED, BatchPlan, plan
from forkpoint.api.deps import visible_job
from forkpoint.api.files import FileStore
from forkpoint.api.job_task import JobTask
from forkpoint.api.jobs import JobRunner
from forkpoint.api.store import JobRecord
from forkpoint.errors import Conflict, NotFound, RequestError
from forkpoint.programs.documents.document import Document
from forkpoint.programs.openai_chat import completion, refusal

PREFIX = "batch_"
WINDOW_SECONDS = 24 * 3600.0
BATCH_TASK = "openai-batch"  # what a batch's job shows as its task
MAX_METADATA = 16  # OpenAI's metadata: at most 16 pairs, keys 64 and values 512 characters


def batch_id(job_id: str) -> str:
    return PREFIX + job_id


def job_id(batch: str) -> str:
    if not batch.startswith(PREFIX):
        raise NotFound(f"no batch {batch}")
    return batch[len(PREFIX) :]


def _file_id(job: str, kind: str) -> str:
    """A batch's output or error file id: fixed by the job, so writing it again is a no-op."""
    return "file-" + hashlib.sha256(f"{job}:{kind}".encode()).hexdigest()[:32]


def check_metadata(metadata: Any) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > MAX_METADATA:
        raise RequestError(f"metadata: at most {MAX_METADATA} string pairs")
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > 64 or len(value) > 512:
            raise RequestError("metadata: keys of at most 64 and values of at most 512 chars")
    return dict(metadata)


class BatchBook:
    """The gateway's batches over its runner (jobs) and file store."""

    def __init__(self, runner: JobRunner, files: FileStore) -> None:
        self.runner, self.files, self.store = runner, files, runner.store
        self._writing = threading.Lock()  # one batch's files written at a time

    def create(
        self,
        caller: Caller,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: dict[str, str] | None,
    ) -> dict[str, Any]:
        """Validate the input file and store the batch as a job: OpenAI's batch object, status
        `in_progress`, or `failed` with the validation errors (stored too: GET shows them)."""
        if endpoint not in ENDPOINTS:
            raise RequestError(
                f"endpoint {endpoint!r} is not served: forkpoint batches {', '.join(ENDPOINTS)}"
            )
        if completion_window != "24h":
            raise RequestError("completion_window must be '24h'")
        record = self.files.visible(input_file_id, caller)
        if record.purpose != "batch":
            raise RequestError(f"file {input_file_id} has purpose {record.purpose!r}, not 'batch'")
        settings = self.runner.settings
        planned = plan(
            self.files.path(record),
            endpoint=endpoint,
            models=list(settings.models),
            max_requests=settings.max_documents_per_job,
            max_document_chars=settings.max_document_chars,
        )
        batch: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": completion_window,
            "metadata": metadata,
            "groups": len(planned.groups),
            "models": planned.models,
        }
        if planned.errors:
            batch["errors"] = planned.errors
            job, _ = self.runner.submit(
                JobTask(grouped=BATCH_TASK), [], owner=caller.owner, batch=batch
            )
            return self.view(job)
        job, _ = self._submit(planned, batch, caller)
        return self.view(job)

    def _submit(
        self, planned: BatchPlan, batch: dict[str, Any], caller: Caller
    ) -> tuple[JobRecord, bool]:
        documents = [
            Document(
                line.custom_id,
                None if line.refusal is not None else line.document,
                error=None if line.refusal is None else line.refusal.message,
            )
            for line in planned.lines
        ]
        return self.runner.submit(
            JobTask(grouped=BATCH_TASK),
            documents,
            owner=caller.owner,
            groups=[spec.model_dump_json(by_alias=True) for spec in planned.groups],
            parts=[line.part for line in planned.lines],
            batch=batch,
        )

    def get(self, batch: str, caller: Caller) -> dict[str, Any]:
        return self.view(self._job(batch, caller))

    def list(self, caller: Caller, *, after: str | None, limit: int) -> dict[str, Any]:
        """OpenAI's cursor page of the caller's batches, newest first."""
        before = None
        if after is not None:
            before = self._job(after, caller).created
        jobs = self.store.batches(caller.listing_owner, before=before, limit=limit + 1)
        data = [self.view(job) for job in jobs[:limit]]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(jobs) > limit,
        }

    def cancel(self, batch: str, caller: Caller) -> dict[str, Any]:
        """Stop the lines not started; the finished ones stay and go in the files."""
        job = self._job(batch, caller)
        status = self.view(job)["status"]
        if status not in ("validating", "in_progress"):
            raise Conflict(f"batch {batch} is {status}: it cannot be cancelled")
        record = dict(job.batch or {})
        record["cancelling_at"] = int(time.time())
        self.store.set_batch(job.id, record)
        self.runner.cancel(job.id)
        return self.view(self.store.get(job.id))

    def _job(self, batch: str, caller: Caller) -> JobRecord:
        job = visible_job(self.store, job_id(batch), caller)
        if job.batch is None:
            raise NotFound(f"no batch {batch}")
        return job

    def view(self, job: JobRecord) -> dict[str, Any]:
        """The batch object, its files written first if every line is settled."""
        record = job.batch or {}
        settled = job.state == "done" or (
            job.state == "cancelled" and self.runner.holding(job.id) == 0
        )
        if settled and "errors" not in record and "finalized_at" not in record:
            record = self._finalize(job)
        return self._object(job, record)

    def _object(self, job: JobRecord, record: dict[str, Any]) -> dict[str, Any]:
        created = int(job.created)
        errors = record.get("errors")
        counts = self.store.status_counts(job.id)
        failed = counts.get("error", 0)
        finished = "finalized_at" in record
        if errors:
            status = "failed"
        elif job.state == "cancelled":
            status = "cancelled" if finished else "cancelling"
        elif job.state == "done":
            status = "completed" if finished else "finalizing"
        else:
            status = "in_progress"
        totals = self.store.counts(job.id)
        prefix = self.store.prefix_tokens(job.id)
        return {
            "id": batch_id(job.id),
            "object": "batch",
            "endpoint": record.get("endpoint"),
            "errors": {"object": "list", "data": errors} if errors else None,
            "input_file_id": record.get("input_file_id"),
            "completion_window": record.get("completion_window", "24h"),
            "status": status,
            "output_file_id": record.get("output_file_id"),
            "error_file_id": record.get("error_file_id"),
            "created_at": created,
            "in_progress_at": None if errors else created,
            "expires_at": created + int(WINDOW_SECONDS),
            "finalizing_at": record.get("finalizing_at"),
            "completed_at": record.get("finalized_at") if status == "completed" else None,
            "failed_at": created if errors else None,
            "expired_at": None,
            "cancelling_at": record.get("cancelling_at"),
            "cancelled_at": record.get("finalized_at") if status == "cancelled" else None,
            "request_counts": {
                "total": job.total,
                "completed": sum(counts.values()) - failed,
                "failed": failed,
            },
            "metadata": record.get("metadata"),
            # forkpoint's own view (OpenAI clients ignore it): the groups of lines that share a
            # prefix, each one's prefix tokens once warmed, and what the lines read and wrote
            "forkpoint": {
                "job_id": job.id,
                "groups": record.get("groups", 0),
                "prefix_tokens": prefix,
                "prompt_tokens": totals.prompt_tokens,
                "cached_tokens": totals.cached_tokens,
                "completion_tokens": totals.completion_tokens,
            },
        }

    def _finalize(self, job: JobRecord) -> dict[str, Any]:
        """Write the output and error files of a settled batch, once (under the lock, and under
        ids fixed by the job: a second writer, or a restarted gateway, finds them written)."""
        with self._writing:
            current = self.store.get(job.id)
            record = dict(current.batch or {})
            if "finalized_at" in record:
                return record
            record["finalizing_at"] = int(time.time())
            parts = self.store.parts(job.id)
            models = record.get("models") or []
            outputs, failures = 0, 0

            def lines(kind: str) -> Iterator[bytes]:
                nonlocal outputs, failures
                for index, result in self.store.recorded(job.id):
                    part = parts[index] if index < len(parts) else None
                    model = models[part] if part is not None and 0 <= part < len(models) else ""
                    line = self._line(job.id, index, result, model, refused=part == REFUSED)
                    answered = line["error"] is None and line["response"]["status_code"] == 200
                    if answered == (kind == "output"):
                        outputs += answered
                        failures += not answered
                        yield (json.dumps(line, ensure_ascii=False) + "\n").encode()

            owner, batch = job.owner, batch_id(job.id)
            for kind, name in (("output", "batch_output.jsonl"), ("error", "batch_errors.jsonl")):
                file_id = _file_id(job.id, kind)
                written = self.files.write(
                    owner, "batch_output", name, lines(kind), batch_id=batch, file_id=file_id
                )
                if written.bytes:
                    record[f"{kind}_file_id"] = file_id
                else:
                    self.files.delete(file_id)
            record["finalized_at"] = int(time.time())
            self.store.set_batch(job.id, record)
            return record

    def _line(
        self, job: str, index: int, result: dict[str, Any], model: str, *, refused: bool
    ) -> dict[str, Any]:
        """One output (or error) file line in OpenAI's shape, its ids fixed by the line."""
        key = hashlib.sha256(f"{job}:{index}".encode()).hexdigest()
        request_id = key[:32]
        line: dict[str, Any] = {"id": f"batch_req_{key[32:64]}", "custom_id": result["file"]}
        if result["status"] == "error":
            error = refusal(result.get("error") or "the request failed")
            if refused:
                error.update(type="invalid_request_error", code="invalid_request")
            status = 400 if refused else 500
            line["response"] = {
                "status_code": status,
                "request_id": request_id,
                "body": {"error": error},
            }
        else:
            line["response"] = {
                "status_code": 200,
                "request_id": request_id,
                "body": completion(
                    result,
                    model=model,
                    completion_id=f"chatcmpl-{request_id}",
                    created=int(time.time()),
                ),
            }
        line["error"] = None
        return line
