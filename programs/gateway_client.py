"""A small client for the gateway (httpx only: the LAN-client install has no server parts).

A refusal is raised as the gateway's own error class: the body's "kind" names it in
core/errors.py. A body without one (an older gateway, a proxy) falls back on the status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from forkpoint.errors import (
    DocumentError,
    ForkpointError,
    RuntimeUnavailable,
    error_class,
)


class GatewayClient:
    """Submit jobs to a forkpoint gateway, follow them, and stream their results."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def submit_files(
        self,
        task: str | dict[str, Any],
        files: list[Path],
        *,
        json_field: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Upload files as one job (multipart; any supported format); returns the job status.
        `task`: a built-in's name, or a choice such as {"task_definition": {...}}."""
        parts = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in files]
        data = {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in _choice(task).items()
        }
        if json_field:
            data["json_field"] = json_field
        return self._call(
            "POST", "/v1/jobs", data=data, files=parts, headers=_once(idempotency_key)
        )

    def submit(
        self,
        task: str | dict[str, Any],
        documents: list[tuple[str, str]],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Texts as one job: (name, text) pairs; returns the job status."""
        body = {**_choice(task), "documents": [{"name": n, "text": t} for n, t in documents]}
        return self._call("POST", "/v1/jobs", json=body, headers=_once(idempotency_key))

    def status(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/jobs/{job_id}")

    def results(
        self,
        job_id: str,
        *,
        wait: bool = True,
        start: int = 0,
        silence: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Result records in document order from document `start` on, as the gateway records
        them. A dropped connection is RuntimeUnavailable: ask again from where it stopped.

        `silence`: the seconds the stream may go without a result before RuntimeUnavailable.
        None (the default) waits as long as the gateway keeps the stream open: a job queued
        behind others sends nothing for a long time, and the gateway ends the stream itself
        after FORKPOINT_RESULTS_WAIT_SECONDS (an hour by default). Connecting is bounded by the
        client's timeout either way."""
        params = {"wait": str(wait).lower(), "start": str(start)}
        timeout = httpx.Timeout(self.timeout, read=silence)
        try:
            with self.http.stream(
                "GET", f"/v1/jobs/{job_id}/results", params=params, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    response.read()
                    self._json(response)
                for line in response.iter_lines():
                    if line:
                        yield json.loads(line)
        except httpx.TransportError as exc:
            raise RuntimeUnavailable(f"lost the gateway at {self.http.base_url}: {exc}") from exc

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; a gateway that cannot be reached is RuntimeUnavailable, not a traceback."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise RuntimeUnavailable(
                f"cannot reach the gateway at {self.http.base_url}: {exc}",
                hint="check --server (is `forkpoint serve` running there?)",
            ) from exc
        return self._json(response)

    def _json(self, response: httpx.Response) -> Any:
        if response.is_success:
            return response.json()
        raise error_from(response)


def _choice(task: str | dict[str, Any]) -> dict[str, Any]:
    return {"task": task} if isinstance(task, str) else task


def _once(idempotency_key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key} if idempotency_key else {}


def error_from(response: httpx.Response) -> ForkpointError:
    """The ForkpointError a gateway's error answer stands for."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"error": response.text}
    status = response.status_code
    message = body.get("error") or body.get("detail") or response.reason_phrase
    kind = error_class(body.get("kind")) or _by_status(status)
    return kind(f"gateway answered {status}: {message}", hint=body.get("hint"))


def _by_status(status: int) -> type[ForkpointError]:
    if status in (413, 422):
        return DocumentError
    if status in (429, 503):
        return RuntimeUnavailable
    return ForkpointError
