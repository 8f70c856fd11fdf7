"""The gateway's settings: one pydantic-settings object, from FORKPOINT_* environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from forkpoint.runtime.client import is_loopback
from forkpoint.runtime.paths import cache_dir

if TYPE_CHECKING:
    from forkpoint.runtime.profiles import LaunchProfile


def usable(keys: list[str]) -> list[str]:
    """The keys as a bearer token can match them: surrounding blanks stripped, blank ones gone."""
    return [key.strip() for key in keys if key.strip()]


class Settings(BaseSettings):
    """Everything the gateway reads at start-up. Field names map to FORKPOINT_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="FORKPOINT_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    profile: str = "cpu-small"
    sglang_url: str | None = None  # a running runtime (or sglang-router); else the profile's URL
    chat_format: str | None = None  # default: the profile's
    db_path: Path = Field(default_factory=lambda: cache_dir() / "gateway.sqlite3")
    # No key needed (every local caller an admin): only when asked for (FORKPOINT_OPEN=1,
    # `forkpoint serve --open`), on a loopback bind, with no key source. Beyond loopback: refused.
    open: bool = False
    api_keys: list[str] = []  # FORKPOINT_API_KEYS='["key1","key2"]'; blank entries are ignored
    api_keys_file: Path | None = None  # one key per line, '#' comments; rotated by editing it
    admin_keys: list[str] = []  # keys that see and cancel every job (and are valid keys)
    idempotency_ttl_seconds: float = Field(24 * 3600.0, gt=0)  # an Idempotency-Key's lifetime
    concurrency: int | None = Field(None, ge=1)  # documents in flight; default: the profile's
    max_queued_documents: int = Field(20_000, ge=1)
    # One API key's share of the queue: one key cannot make the others get 429.
    max_queued_documents_per_key: int = Field(10_000, ge=1)
    retention_days: float = Field(30.0, gt=0)  # finished jobs, their documents and results
    max_documents_per_job: int = Field(10_000, ge=1)
    max_document_chars: int = Field(200_000, ge=1)
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    # OpenAI files (POST /v1/files): one file's size, OpenAI's 200 MB at most, and what one
    # key may keep stored at once (batch inputs and outputs both count)
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    max_file_bytes_per_key: int = Field(10 * 1024**3, ge=1024)
    files_path: Path | None = None  # OpenAI files' bytes; default: beside db_path
    # The model names OpenAI requests may give (GET /v1/models); empty: any name, all served
    # by the one runtime, so a script's own model name (gpt-4o-mini...) runs unchanged.
    models: list[str] = []
    extract_timeout_seconds: float = Field(300.0, gt=0)
    # One job document's whole extraction (every chunk and re-ask): no ask starts after it.
    document_timeout_seconds: float = Field(1800.0, gt=0)
    runtime_attempts: int = Field(5, ge=1)  # per document, outages while the runtime is up
    runtime_down_wait_seconds: float = Field(900.0, gt=0)  # wait for a restarting runtime
    results_wait_seconds: float = Field(3600.0, gt=0)
    max_warm_tasks: int = Field(32, ge=1)  # warmed task prefixes (extractors) kept, LRU
    max_result_streams: int = Field(64, ge=1)  # results streams open at once; past it 429
    # Host names (any port) a request may name besides loopback's: checked on a loopback bind,
    # and beyond loopback once any is listed (empty there: any host). Against DNS rebinding.
    allowed_hosts: list[str] = []

    @model_validator(mode="after")
    def _keys_required_off_loopback(self) -> Settings:
        """At start-up a configured key file must be readable, beyond loopback at least one key
        must exist, and `open` is for loopback only. Later the file is re-read on every request
        (api/auth.py), and a file that becomes empty or unreadable refuses requests: it never
        opens the gateway."""
        if self.open and not self.is_loopback:
            raise ValueError(
                "FORKPOINT_OPEN (--open) serves without API keys, so only on a loopback bind: "
                f"not on {self.host}; configure API keys (FORKPOINT_API_KEYS or "
                "FORKPOINT_API_KEYS_FILE) instead"
            )
        try:
            keys = self.keys()
        except (OSError, UnicodeError) as exc:
            raise ValueError(f"cannot read the API key file {self.api_keys_file}: {exc}") from exc
        if not self.is_loopback and not keys:
            raise ValueError(
                f"binding to {self.host} exposes the gateway beyond this machine: configure API "
                "keys (FORKPOINT_API_KEYS or FORKPOINT_API_KEYS_FILE) or bind to 127.0.0.1"
            )
        return self

    @property
    def has_key_source(self) -> bool:
        """Whether any key source is configured, even one that holds no key (FORKPOINT_API_KEYS=
        '[]' or '[""]', an empty file): then every request needs a key, and none is valid."""
        explicit = {"api_keys", "admin_keys"} & self.model_fields_set
        return bool(explicit) or self.api_keys_file is not None

    @property
    def is_open(self) -> bool:
        """No key needed: only when `open` was set, on a loopback bind, with no key source
        configured (keys, when there are any, win). Decided by the settings, never by the key
        list being empty at the moment."""
        return self.open and self.is_loopback and not self.has_key_source

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.host)

    def keys(self) -> list[str]:
        """Every valid key (admin keys included), the file re-read on every call so rotation
        needs no restart. Blank keys are none, and a file line whose first non-blank character
        is '#' is a comment. Raises OSError (or UnicodeError) if the file cannot be read."""
        keys = [*self.api_keys, *self.admin_keys]
        if self.api_keys_file is not None:
            lines = self.api_keys_file.read_text().splitlines()
            keys += [line for line in lines if not line.strip().startswith("#")]
        return usable(keys)

    def admin_tokens(self) -> list[str]:
        """The admin keys, blank ones dropped (an empty bearer token is never an admin)."""
        return usable(self.admin_keys)

    @cached_property
    def launch_profile(self) -> LaunchProfile:
        from forkpoint.runtime.profiles import get_profile

        return get_profile(self.profile)

    @property
    def files_dir(self) -> Path:
        """Where uploaded and batch output files live: FORKPOINT_FILES_PATH, else beside the
        database, named for it (gateway.sqlite3: gateway-files)."""
        if self.files_path is not None:
            return self.files_path
        return self.db_path.with_name(self.db_path.stem + "-files")

    @property
    def runtime_url(self) -> str:
        return self.sglang_url or self.launch_profile.url
