"""The runtime key inside the SGLang server: never on its argv, never in its log.

An argv is world-readable (`ps`, /proc/PID/cmdline) and SGLang logs its whole `server_args` at
start-up, so the launcher does not pass `--api-key`. It puts the key in the child's environment
as FORKPOINT_SERVER_API_KEY (/proc/PID/environ is readable by the same user only), and the
child's `sitecustomize` (server_site/) calls `install()`, which:

- takes the key out of `os.environ`, so the processes SGLang starts (scheduler, detokenizer)
  do not inherit it;
- sets it on the ServerArgs that `prepare_server_args` returns (sglang/launch_server.py parses
  `sys.argv[1:]` with it), after parsing, so SGLang's `launch_command` does not hold it either;
- redacts `api_key` and `admin_api_key` in the `server_args=` line SGLang logs
  (`_server_args_for_logging` in sglang/srt/entrypoints/engine.py), in every process;
- replaces the key's value by `<redacted>` in any log message of the server process.

The SGLang child also gets none of the gateway's own secrets (`GATEWAY_SECRETS`).

The patches are applied when SGLang's modules are imported (an import hook), so loading this at
interpreter start-up imports neither SGLang nor torch. A key that cannot be set on the server
fails its import loudly rather than starting a server without the key; the launcher also checks
that the started server refuses a call without the key.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import logging
import os
import sys
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from types import ModuleType
from typing import Any

ENV = "FORKPOINT_SERVER_API_KEY"
# The gateway's client keys: an SGLang server has no use for them.
GATEWAY_SECRETS = ("FORKPOINT_API_KEYS", "FORKPOINT_ADMIN_KEYS", "FORKPOINT_API_KEYS_FILE")
SECRET_FIELDS = ("api_key", "admin_api_key")
REDACTED = "<redacted>"

_SERVER_ARGS_MODULE = "sglang.srt.server_args"
_ENGINE_MODULE = "sglang.srt.entrypoints.engine"
_MARK = "__forkpoint_server_key__"

_key: str | None = None


def without_gateway_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` without the gateway's client keys."""
    return {name: value for name, value in environ.items() if name not in GATEWAY_SECRETS}


def install(environ: MutableMapping[str, str] | None = None) -> None:
    """Take the key from `environ` (ours by default) and patch SGLang to use it and hide it.

    Patches SGLang's modules now if they are imported, else when they are. Installing again
    with no key in `environ` keeps the key already taken.
    """
    global _key
    key = (os.environ if environ is None else environ).pop(ENV, None) or None
    if key is not None:
        _key = key
        _redact_in_log_records(key)
    for name, patch in _PATCHES.items():
        module = sys.modules.get(name)
        if module is not None:
            patch(module)
    if not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


def redacted(values: Any) -> Any:
    """`values` (SGLang's dict of server args) with the key fields that are set redacted."""
    if not isinstance(values, Mapping):
        return values
    hidden = dict(values)
    for name in SECRET_FIELDS:
        if hidden.get(name) is not None:
            hidden[name] = REDACTED
    return hidden


def _redact_in_log_records(key: str) -> None:
    """Every log record made from now on has `key` replaced by REDACTED in its message. A record
    factory, not a handler filter: SGLang replaces the root handlers (`basicConfig(force=True)`)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, _MARK, None) == key:
        return

    def record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it where it formats
            return record
        if key in message:
            record.msg, record.args = message.replace(key, REDACTED), None
        return record

    setattr(record_factory, _MARK, key)
    logging.setLogRecordFactory(record_factory)


def _patch_server_args(module: ModuleType) -> None:
    prepare = module.prepare_server_args
    if getattr(prepare, _MARK, False):
        return

    @functools.wraps(prepare)
    def prepare_server_args(argv: list[str]) -> Any:
        server_args = prepare(argv)
        if _key is not None:
            server_args.api_key = _key
        return server_args

    setattr(prepare_server_args, _MARK, True)
    module.prepare_server_args = prepare_server_args  # type: ignore[attr-defined]


def _patch_engine(module: ModuleType) -> None:
    for_logging = module._server_args_for_logging
    if getattr(for_logging, _MARK, False):
        return

    @functools.wraps(for_logging)
    def _server_args_for_logging(server_args: Any) -> Any:
        return redacted(for_logging(server_args))

    setattr(_server_args_for_logging, _MARK, True)
    module._server_args_for_logging = _server_args_for_logging  # type: ignore[attr-defined]


_PATCHES: dict[str, Callable[[ModuleType], None]] = {
    _SERVER_ARGS_MODULE: _patch_server_args,
    _ENGINE_MODULE: _patch_engine,
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds SGLang's modules through the other finders and patches them once loaded. A patch
    that fails (SGLang renamed what it wraps) fails the import: no server with a lost key."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        patch = _PATCHES.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            patch(module)

        # A file loader serves one module: this patches this import only.
        loader.exec_module = exec_and_patch  # type: ignore[method-assign,union-attr]
        return spec
