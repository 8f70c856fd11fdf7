"""The FastAPI gateway: routes parse, call one function, and format."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from forkpoint.api import (
    errors,
    routes_extract,
    routes_files,
    routes_jobs,
    routes_openai,
    routes_review,
)
from forkpoint.api.auth import Gate
from forkpoint.api.batches import BatchBook
from forkpoint.api.door import Door, StreamSlots
from forkpoint.api.files import FileStore
from forkpoint.api.jobs import JobRunner
from forkpoint.api.metrics import Metrics
from forkpoint.api.settings import Settings
from forkpoint.api.store import JobStore
from forkpoint.runtime.client import RuntimeClient, Timeouts

if TYPE_CHECKING:
    from forkpoint.runtime.supervisor import RuntimeSupervisor


def create_app(
    settings: Settings | None = None,
    *,
    start_workers: bool = True,
    supervisor: RuntimeSupervisor | None = None,
) -> FastAPI:
    """The gateway. `start_workers=False` accepts and stores jobs without running them;
    `supervisor` (a RuntimeSupervisor) is the runtime this gateway owns and restarts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = JobStore(settings.db_path)
        runner = JobRunner(store, settings, Metrics(), supervisor=supervisor)
        app.state.settings, app.state.store, app.state.runner = settings, store, runner
        app.state.files = files = FileStore(settings.db_path, settings.files_dir)
        files.sweep()  # bytes a crash left without their record
        app.state.batches = BatchBook(runner, files)
        runner.purgers.append(files.purge)
        app.state.gate = gate
        app.state.result_streams = StreamSlots(settings.max_result_streams)
        app.state.readiness = readiness = Readiness(runner.url)
        if start_workers:
            runner.start()
        yield
        runner.stop()
        readiness.close()
        files.close()
        store.close()

    app = FastAPI(title="forkpoint gateway", version="1", lifespan=lifespan)
    errors.install(app)
    gate = Gate(settings)
    app.add_middleware(Door, gate=gate, max_body_bytes=settings.max_body_bytes)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(request: Request) -> JSONResponse:
        """Whether the runtime answers: no key needed, so it names no URL, and it asks the
        runtime at most once per READY_CACHE_SECONDS however often it is called."""
        ok = request.app.state.readiness.ready()
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        runner: JobRunner = request.app.state.runner
        return Response(runner.metrics.render(runner.url), media_type="text/plain; version=0.0.4")

    app.include_router(routes_extract.v1)
    app.include_router(routes_jobs.v1)
    app.include_router(routes_files.v1)
    app.include_router(routes_openai.v1)
    app.include_router(routes_review.v1)
    app.include_router(routes_review.ui)
    return app


READY_CACHE_SECONDS = 2.0


class Readiness:
    """The runtime's health, asked at most once per `seconds` (an unauthenticated /readyz in a
    loop must not become a load on the runtime). While one request asks, the others answer the
    last answer instead of waiting for it (a hung runtime holds the check for its 5 s timeout)."""

    def __init__(self, url: str, seconds: float | None = None) -> None:
        self.seconds = READY_CACHE_SECONDS if seconds is None else seconds
        self._client = RuntimeClient(url, timeouts=Timeouts(connect=5.0, call=5.0))
        self._lock = threading.Lock()
        self._answer: bool | None = None
        self._asked = 0.0  # time.monotonic() when the answer arrived
        self._asking = False

    def ready(self) -> bool:
        with self._lock:
            answer = self._answer
            fresh = answer is not None and time.monotonic() - self._asked < self.seconds
            if answer is not None and (fresh or self._asking):
                return answer
            self._asking = True
        ok = False
        try:
            ok = self._client.healthy("/health")
        finally:
            with self._lock:
                self._answer, self._asked, self._asking = ok, time.monotonic(), False
        return ok

    def close(self) -> None:
        self._client.close()
