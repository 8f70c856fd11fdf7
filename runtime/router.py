"""Many runtimes behind one URL: SGLang's router, launched from a typed profile.

`python -m sglang_router.launch_router --worker-urls ... --policy cache_aware` keeps an
approximate radix tree of what each worker has seen and sends a request to the worker holding
the longest match of its prefix, unless the load between workers is too uneven
(`balance_abs_threshold` and `balance_rel_threshold` both exceeded), in which case the least
loaded worker gets it. For one extraction task that means: documents land where the task's
prefix is cached, and a second worker is used (and computes the prefix once) only when the first
is busy. The gateway points at the router exactly as at one runtime (FORKPOINT_SGLANG_URL).

Without a key the router checks nobody, and its control plane (/workers, /add_worker) changes
where requests go: it binds to loopback, beside the gateway. It reaches the workers with the
runtime key, which workers on the LAN require (and then asks it of its callers too, which the
gateway sends). The key is never on its argv: `forkpoint.runtime.router_launch` wraps
`sglang_router.launch_router` and takes it from $FORKPOINT_RUNTIME_API_KEY in its environment.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from forkpoint.errors import RuntimeUnavailable
from forkpoint.runtime.client import RuntimeClient, is_loopback
from forkpoint.runtime.launcher import ManagedProcess, log_tail
from forkpoint.runtime.server_key import without_gateway_secrets


class RouterProfile(BaseModel):
    """One sglang-router in front of `worker_urls`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worker_urls: tuple[str, ...] = Field(min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(30080, ge=1, le=65535)
    policy: Literal["cache_aware", "round_robin", "random", "power_of_two"] = "cache_aware"
    cache_threshold: float = Field(0.3, ge=0, le=1)  # min prefix match to prefer a worker
    balance_abs_threshold: int = Field(64, ge=0)  # requests of load difference tolerated ...
    balance_rel_threshold: float = Field(1.5, ge=1)  # ... and load ratio, before balancing
    prometheus_port: int = Field(29000, ge=1, le=65535)  # the router's own /metrics
    request_timeout_secs: int = Field(1800, ge=1)  # a long document under load can take minutes

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, host: str) -> str:
        if not is_loopback(host):
            raise ValueError(
                f"the router would listen on {host}: it does not check who calls it, so it "
                "binds to loopback beside the gateway (127.0.0.1)"
            )
        return host

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def argv(self) -> list[str]:
        """sglang_router.launch_router's argv, through our wrapper: the key is in the env."""
        return [
            sys.executable,
            "-m",
            "forkpoint.runtime.router_launch",
            "--worker-urls",
            *self.worker_urls,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--policy",
            self.policy,
            "--cache-threshold",
            str(self.cache_threshold),
            "--balance-abs-threshold",
            str(self.balance_abs_threshold),
            "--balance-rel-threshold",
            str(self.balance_rel_threshold),
            "--prometheus-host",
            self.host,
            "--prometheus-port",
            str(self.prometheus_port),
            "--request-timeout-secs",
            str(self.request_timeout_secs),
        ]


class RouterServer(ManagedProcess):
    """The router as a child process; ready when all its workers are registered and healthy."""

    def __init__(
        self,
        profile: RouterProfile,
        *,
        log_path: Path | None = None,
        startup_timeout: float = 300.0,
    ) -> None:
        super().__init__("router", log_path, startup_timeout)
        self.profile = profile

    @property
    def url(self) -> str:
        return self.profile.url

    def start(self) -> RouterServer:
        """Launch the router; ready once every worker is registered and healthy."""
        # The runtime key ($FORKPOINT_RUNTIME_API_KEY) stays: router_launch takes it from here.
        env = without_gateway_secrets(os.environ)
        self._spawn(self.profile.argv(), env, "/readiness", "the sglang-router")
        deadline = time.monotonic() + self.startup_timeout
        while (healthy := self.healthy_workers()) < len(self.profile.worker_urls):
            if time.monotonic() > deadline or not self.running:
                self.stop()
                raise RuntimeUnavailable(
                    f"the sglang-router registered {healthy} of "
                    f"{len(self.profile.worker_urls)} workers\n{log_tail(self.log_path)}",
                    hint="check that every --worker-url answers /health",
                )
            time.sleep(0.5)
        return self

    def healthy_workers(self) -> int:
        try:
            workers = RuntimeClient(self.url).json("GET", "/workers", timeout=10)["workers"]
        except (RuntimeUnavailable, KeyError, TypeError):
            return 0
        return sum(1 for worker in workers if worker.get("is_healthy"))

    def __enter__(self) -> RouterServer:
        return self.start()
