"""The FastAPI gateway: routes parse, call one function, and format."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from forkpoint.api import errors, routes_extract, routes_jobs
from forkpoint.api.auth import Gate
from forkpoint.api.door import Door
from forkpoint.api.jobs import JobRunner
from forkpoint.api.metrics import Metrics
from forkpoint.api.settings import Settings
from forkpoint.api.store import JobStore
from forkpoint.runtime.client import RuntimeClient, Timeouts


def create_app(
    settings: Settings | None = None, *, start_workers: bool = True, supervisor=None
) -> FastAPI:
    """The gateway. `start_workers=False` accepts and stores jobs without running them;
    `supervisor` (a RuntimeSupervisor) is the runtime this gateway owns and restarts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = JobStore(settings.db_path)
        runner = JobRunner(store, settings, Metrics(), supervisor=supervisor)
        app.state.settings, app.state.store, app.state.runner = settings, store, runner
        app.state.gate = gate
        if start_workers:
            runner.start()
        yield
        runner.stop()
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
        url = request.app.state.runner.url
        ok = RuntimeClient(url, timeouts=Timeouts(connect=5.0, call=5.0)).healthy("/health")
        return JSONResponse({"runtime": url, "ready": ok}, status_code=200 if ok else 503)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        runner: JobRunner = request.app.state.runner
        return Response(runner.metrics.render(runner.url), media_type="text/plain; version=0.0.4")

    app.include_router(routes_extract.v1)
    app.include_router(routes_jobs.v1)
    return app
