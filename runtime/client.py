"""forkpoint's one HTTP client for an SGLang runtime (or sglang-router): every call has a timeout.

What forkpoint asks a runtime: which model it serves, how many tokens a text is, whether it is
healthy, to flush its cache, to load and drop NGRAM draft corpora (runtime/corpora.py, through
`request`). Generation goes through SGLang's frontend program (programs/program.py), whose
endpoint sends its requests through this client too. A runtime that cannot be reached (refused,
reset, timed out) is RuntimeUnavailable; one that answers with an error is the caller's to judge
(`response.status_code`), or RuntimeUnavailable from `json`.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import os
import ssl
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import httpx

from forkpoint.errors import RuntimeUnavailable

# /model_info is SGLang 0.5's name; /get_model_info (deprecated there, logged on every call) is
# what older servers and sglang-router answer.
INFO_PATHS = ("/model_info", "/get_model_info")

# The key SGLang runtimes are launched with (`--api-key`) and that every forkpoint call to a
# runtime or router sends as a bearer token. A runtime bound beyond loopback must have one.
RUNTIME_KEY_ENV = "FORKPOINT_RUNTIME_API_KEY"


def runtime_api_key() -> str | None:
    """The runtime key from the environment; None when unset or empty."""
    return os.environ.get(RUNTIME_KEY_ENV) or None


def is_loopback(host: str) -> bool:
    """True for a bind address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Timeouts:
    """Seconds. `generate` bounds one document's request: queueing behind a full server
    included, so it is generous; a runtime that hangs still ends the request."""

    connect: float = 10.0
    call: float = 60.0  # model info, tokenize, health, flush, corpora lists
    corpus: float = 300.0  # loading a job's documents as a draft corpus
    generate: float = 900.0

    def httpx(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=self.connect)


# No cap on a thread's connections: a thread makes one call at a time. httpx's default (100
# connections, 20 kept alive) held a 160-document profile to 100 requests in flight through one
# shared client and reconnected for most requests past the 20th.
UNCAPPED = httpx.Limits(max_connections=None, max_keepalive_connections=None)


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default verifying context (certifi's CAs), made once per process."""
    return httpx.create_ssl_context()


class RuntimeClient:
    """Calls to one runtime at `url`. Thread-safe: each calling thread has an httpx client of
    its own (`http`), since one shared pool scans all of its connections for every request and
    every response under one lock (httpcore's ConnectionPool), which at 160 documents in flight
    cost more CPU than the call itself. Sends the runtime key (`api_key`, else
    $FORKPOINT_RUNTIME_API_KEY) when there is one."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeouts: Timeouts | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeouts = timeouts or Timeouts()
        key = api_key if api_key is not None else runtime_api_key()
        self._settings: dict[str, Any] = {
            "base_url": self.url,
            "headers": {"Authorization": f"Bearer {key}"} if key else None,
            "timeout": self.timeouts.httpx(self.timeouts.call),
            "transport": transport,
            "limits": UNCAPPED,
            "verify": _tls(),  # one context for every thread's client: loading CAs is ~ms
        }
        self._threads = threading.local()
        self._clients: weakref.WeakSet[httpx.Client] = weakref.WeakSet()  # for close()
        self._lock = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        """The calling thread's httpx client (made on its first call; gone with the thread)."""
        client: httpx.Client | None = getattr(self._threads, "client", None)
        if client is None:
            client = httpx.Client(**self._settings)
            self._threads.client = client
            with self._lock:
                self._clients.add(client)
        return client

    def close(self) -> None:
        """Close every thread's connections."""
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.close()

    def retimed(self, timeouts: Timeouts) -> RuntimeClient:
        """This client with other timeouts, sharing its connections (no new TLS contexts)."""
        view = copy.copy(self)
        view.timeouts = timeouts
        return view

    def request(
        self, method: str, path: str, *, json: Any = None, timeout: float | None = None
    ) -> httpx.Response:
        """One call; RuntimeUnavailable when nothing answers (refused, reset, timed out)."""
        limit = self.timeouts.httpx(self.timeouts.call if timeout is None else timeout)
        try:
            return self.http.request(method, path, json=json, timeout=limit)
        except httpx.HTTPError as exc:
            raise RuntimeUnavailable(
                f"no SGLang server answers at {self.url} ({method} {path}: "
                f"{exc or type(exc).__name__})",
                hint="start one with `forkpoint runtime up`, or check the URL",
            ) from exc

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call that must answer 200 with JSON; anything else is RuntimeUnavailable."""
        return self._checked(self.request(method, path, **kwargs), path)

    def _checked(self, answer: httpx.Response, path: str) -> Any:
        if answer.status_code != 200:
            raise RuntimeUnavailable(
                f"the runtime at {self.url} answered {path} with {answer.status_code}: "
                f"{answer.text[:200]}"
            )
        try:
            return answer.json()
        except ValueError as exc:
            raise RuntimeUnavailable(f"the runtime at {self.url} sent no JSON from {path}") from exc

    # -- what the runtime is -------------------------------------------------------------------

    def model_info(self) -> dict[str, Any]:
        """SGLang's model info (one request; two on an older server)."""
        for path in INFO_PATHS:
            answer = self.request("GET", path)
            if answer.status_code != 404:
                return self._checked(answer, path)
        raise RuntimeUnavailable(
            f"the server at {self.url} has no model info endpoint ({', '.join(INFO_PATHS)})",
            hint="is it an SGLang server or sglang-router?",
        )

    def healthy(self, path: str = "/health") -> bool:
        """True when GET `path` answers 200 (`/health_generate` also runs one decode step)."""
        try:
            return self.request("GET", path).status_code == 200
        except RuntimeUnavailable:
            return False

    def tokenize(self, texts: list[str], *, special: bool = True) -> tuple[list[int], int]:
        """Token counts of `texts` (with BOS etc. when `special`) and the model's context."""
        body = self.json("POST", "/tokenize", json={"prompt": texts, "add_special_tokens": special})
        counts = body["count"] if isinstance(body["count"], list) else [body["count"]]
        return counts, int(body["max_model_len"])

    def flush_cache(self) -> bool:
        """Drop the runtime's prefix cache (refused while requests run); True if it did."""
        return self.request("POST", "/flush_cache").status_code == 200
