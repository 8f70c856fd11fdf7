"""OpenAI's Files API, as OpenAI's clients call it for the Batch API: upload, list, retrieve,
download and delete files. A file belongs to the API key that uploaded it (api/files.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from forkpoint.api.deps import CallerDep, offload, v1_router
from forkpoint.api.files import FileStore
from forkpoint.errors import NotFound, RequestError

v1 = v1_router()

# OpenAI's purposes (openai-python's FilePurpose); the gateway stores files for batches only
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user", "evals")
ACCEPTED = "batch"
CHUNK = 1024 * 1024  # bytes copied from the spooled upload at a time
UPLOAD_FORM = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "purpose": {"type": "string", "enum": [ACCEPTED]},
                    },
                    "required": ["file", "purpose"],
                }
            }
        },
        "required": True,
    }
}


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str
    status_details: str | None
    expires_at: int | None


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


def files_of(request: Request) -> FileStore:
    return request.app.state.files


FilesDep = Annotated[FileStore, Depends(files_of)]


@v1.post("/files", response_model=FileObject, openapi_extra=UPLOAD_FORM)
async def upload_file(request: Request, files: FilesDep, caller: CallerDep) -> dict[str, Any]:
    """Upload a file (multipart: `file` and `purpose`, which must be "batch"), at most
    FORKPOINT_MAX_FILE_BYTES; an API key's files together at most
    FORKPOINT_MAX_FILE_BYTES_PER_KEY."""
    settings = request.app.state.settings
    async with request.form(max_files=1, max_fields=10) as form:
        purpose, upload = form.get("purpose"), form.get("file")
        _check_purpose(purpose)
        if not isinstance(upload, UploadFile):
            raise RequestError("an upload needs a 'file' part holding the file itself")
        file: UploadFile = upload
        record = await offload(
            lambda: files.save(
                caller.owner,
                ACCEPTED,
                file.filename or "upload",
                _chunks(file),
                max_bytes=settings.max_file_bytes,
                max_owner_bytes=settings.max_file_bytes_per_key,
            )
        )
    return record.to_openai()


def _check_purpose(purpose: object) -> None:
    if purpose == ACCEPTED:
        return
    if not isinstance(purpose, str) or not purpose:
        raise RequestError(f"an upload needs a 'purpose' field: {ACCEPTED!r}")
    if purpose in PURPOSES:
        raise RequestError(
            f"purpose {purpose!r} is not served here: this gateway stores files for the Batch "
            f"API only (purpose {ACCEPTED!r})"
        )
    raise RequestError(f"unknown purpose {purpose[:100]!r}: this gateway accepts {ACCEPTED!r}")


def _chunks(upload: UploadFile) -> Iterator[bytes]:
    """The spooled upload's bytes, CHUNK at a time (read in the worker thread)."""
    upload.file.seek(0)
    while chunk := upload.file.read(CHUNK):
        yield chunk


@v1.get("/files", response_model=FileList)
def list_files(
    files: FilesDep,
    caller: CallerDep,
    purpose: Annotated[str | None, Query(max_length=100)] = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
    order: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    """The caller's files (an admin key's: everyone's), a page of OpenAI's cursor list: the next
    page is `after=<last_id>` while `has_more`."""
    records = files.list(
        caller.listing_owner, purpose=purpose, after=after, limit=limit + 1, order=order
    )
    page = records[:limit]
    return {
        "object": "list",
        "data": [record.to_openai() for record in page],
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
        "has_more": len(records) > limit,
    }


@v1.get("/files/{file_id}", response_model=FileObject)
def retrieve_file(file_id: str, files: FilesDep, caller: CallerDep) -> dict[str, Any]:
    return files.visible(file_id, caller).to_openai()


@v1.get("/files/{file_id}/content", response_class=FileResponse)
def file_content(file_id: str, files: FilesDep, caller: CallerDep) -> FileResponse:
    """The file's bytes, streamed."""
    path = files.path(files.visible(file_id, caller))
    return FileResponse(path, media_type="application/octet-stream", stat_result=_stat(path))


def _stat(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError:  # deleted since its row was read
        raise NotFound(f"no file {path.name}") from None


@v1.delete("/files/{file_id}", response_model=FileDeleted)
def delete_file(file_id: str, files: FilesDep, caller: CallerDep) -> dict[str, Any]:
    record = files.visible(file_id, caller)
    if not files.delete(record.id):  # deleted by another request meanwhile
        raise NotFound(f"no file {file_id}")
    return {"id": record.id, "object": "file", "deleted": True}
