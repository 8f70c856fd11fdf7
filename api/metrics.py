"""Prometheus metrics of the gateway: jobs, documents, tokens, latency."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from forkpoint.programs.results.record import DocumentResult


class Metrics:
    """The gateway's own registry (not the process-global one: tests create many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter("forkpoint_jobs", "Jobs by event.", ["event"], registry=self.registry)
        self.documents = Counter(
            "forkpoint_documents",
            "Recorded documents by status.",
            ["status"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "forkpoint_tokens", "Tokens by kind.", ["kind"], registry=self.registry
        )
        self.latency = Histogram(
            "forkpoint_document_seconds",
            "Per-document extraction latency.",
            buckets=(0.5, 1, 2, 5, 10, 20, 40, 80, 160, 320),
            registry=self.registry,
        )
        self.runtime_outages = Counter(
            "forkpoint_runtime_outages", "Runtime outages met by workers.", registry=self.registry
        )
        self.runtime_restarts = Counter(
            "forkpoint_runtime_restarts",
            "Restarts of the runtime this gateway owns, after it died.",
            registry=self.registry,
        )
        self.worker_errors = Counter(
            "forkpoint_worker_errors",
            "Documents a worker failed on with an unexpected exception (logged with traceback).",
            registry=self.registry,
        )

    def observe(self, result: DocumentResult) -> None:
        self.documents.labels(result.status).inc()
        self.tokens.labels("prompt").inc(result.usage.prompt_tokens)
        self.tokens.labels("cached").inc(result.usage.cached_tokens)
        self.tokens.labels("completion").inc(result.usage.completion_tokens)
        if result.usage.completion_tokens:
            self.latency.observe(result.seconds)

    def render(self, runtime_url: str) -> bytes:
        link = f"# The runtime's own metrics: {runtime_url}/metrics\n".encode()
        return link + generate_latest(self.registry)
