"""A bound on SGLang's compiled-grammar caches, loaded into every SGLang process we launch.

SGLang keeps every grammar it compiles: `BaseGrammarBackend.cache`
(sglang/srt/constrained/base_grammar_backend.py) is a plain dict filled by `set_cache` and only
emptied by `reset`, and the xgrammar backend's `GrammarCompiler` keeps its own copy of each
compiled grammar with no memory limit (`cache_limit_bytes=-1`). forkpoint sends a grammar per
document for copy fields (the `ebnf` sampling parameter, 0.5-3 MB each once compiled), so over
thousands of documents the server's memory grows without end. `install()` bounds both:

- every grammar backend's `cache` becomes a `BoundedGrammarCache`, a least-recently-used dict of
  at most `max_entries` grammars. The backends all call `BaseGrammarBackend.__init__` (xgrammar,
  outlines, llguidance, and `ReasonerGrammarBackend`, which wraps one and looks grammars up in
  its own `cache`; its extra `_budget_variant_keys` is already capped at 32 by SGLang);
- the xgrammar backend's compiler is rebuilt with `cache_limit_bytes = max_entries *
  ENTRY_BYTES`, so xgrammar's own cache is bounded too (it evicts by bytes, least recently used).

An evicted grammar costs only a recompile if its key comes back; requests already running hold
their own copy of the grammar object.

Default: 256 entries (`DEFAULT_ENTRIES`). A task's JSON-schema grammar is small and shared by all
documents of the task, so it is read on every request and never the least recently used; the
entries that churn are the per-document copy-field grammars. A document's grammar should stay
cached while its requests are in flight: the largest `client_concurrency` of the built-in
profiles is 160 (mixtral-awq-2x4090), so 256 covers every in-flight document plus the tasks'
schemas with room to spare, at worst ~256 x 3 MB = 768 MB in SGLang's dict and the same budget
(256 x `ENTRY_BYTES`) in xgrammar's compiler cache, instead of growing without bound. A profile
sets its own with `grammar_cache_entries`; the launcher passes it to the server in
`FORKPOINT_GRAMMAR_CACHE_ENTRIES`, which `server_site/sitecustomize.py` reads.

The patch is applied when SGLang's modules are imported (an import hook), so loading this at
interpreter start-up imports neither SGLang nor torch.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

logger = logging.getLogger("forkpoint.grammar_cache")

ENV = "FORKPOINT_GRAMMAR_CACHE_ENTRIES"
DEFAULT_ENTRIES = 256
ENTRY_BYTES = 3 * 1024 * 1024  # xgrammar's cache budget per entry: a large copy-field grammar

_BASE_MODULE = "sglang.srt.constrained.base_grammar_backend"
_XGRAMMAR_MODULE = "sglang.srt.constrained.xgrammar_backend"
_MARK = "__forkpoint_grammar_cache__"

_max_entries = DEFAULT_ENTRIES
_logged: set[str] = set()


class BoundedGrammarCache(dict):
    """A dict of at most `max_entries` items, evicting the least recently used.

    `get` and `[key]` of a present key make it the most recent; setting a key makes it the most
    recent and evicts the oldest entries beyond the bound. The order is the dict's own (a read
    re-inserts the key at the end), so `pop`, `del` and `clear` need nothing extra.
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        super().__init__()
        self.max_entries = max_entries
        self._lock = threading.Lock()

    def _touch(self, key: Any) -> Any:
        value = dict.pop(self, key)
        dict.__setitem__(self, key, value)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            if not dict.__contains__(self, key):
                return default
            return self._touch(key)

    def __getitem__(self, key: Any) -> Any:
        with self._lock:
            if not dict.__contains__(self, key):
                raise KeyError(key)
            return self._touch(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        with self._lock:
            dict.pop(self, key, None)
            dict.__setitem__(self, key, value)
            while len(self) > self.max_entries:
                dict.__delitem__(self, next(iter(self)))

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key in self:
            return self[key]
        self[key] = default
        return default

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        items: Iterable[tuple[Any, Any]]
        items = other.items() if isinstance(other, Mapping) else other
        for key, value in items:
            self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def __repr__(self) -> str:
        return f"BoundedGrammarCache(max_entries={self.max_entries}, entries={len(self)})"


def entries_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The bound from `FORKPOINT_GRAMMAR_CACHE_ENTRIES`; the default if unset or not >= 1."""
    raw = (os.environ if environ is None else environ).get(ENV, "").strip()
    if not raw:
        return DEFAULT_ENTRIES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        logger.warning(
            "forkpoint: %s=%r is not a whole number >= 1; using %d", ENV, raw, DEFAULT_ENTRIES
        )
        return DEFAULT_ENTRIES
    return value


def install(max_entries: int) -> None:
    """Bound the grammar caches of every SGLang grammar backend created in this process.

    Patches the SGLang classes now if their modules are imported, else when they are. Installing
    again changes the bound for backends created afterwards and wraps nothing twice.
    """
    global _max_entries
    if max_entries < 1:
        raise ValueError(f"max_entries must be at least 1, got {max_entries}")
    _max_entries = max_entries
    for name, patch in _PATCHES.items():
        module = sys.modules.get(name)
        if module is not None:
            patch(module)
    if not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


def _log_once(kind: str, message: str, *args: object) -> None:
    if kind not in _logged:
        _logged.add(kind)
        logger.info(message, *args)


def _wrap_init(cls: type, after: Callable[[Any], None]) -> None:
    init = cls.__init__  # type: ignore[misc]
    if getattr(init, _MARK, False):
        return

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        after(self)

    setattr(__init__, _MARK, True)
    cls.__init__ = __init__  # type: ignore[misc]


def _bound_backend_cache(backend: Any) -> None:
    backend.cache = BoundedGrammarCache(_max_entries)
    _log_once("base", "forkpoint: SGLang grammar cache bounded at %d entries", _max_entries)


def _bound_xgrammar_compiler(backend: Any) -> None:
    module = sys.modules[_XGRAMMAR_MODULE]
    tokenizer_info = getattr(backend, "_tokenizer_info", None)
    if tokenizer_info is None:
        _log_once(
            "xgrammar",
            "forkpoint: xgrammar backend has no _tokenizer_info; its compiler cache stays "
            "unbounded",
        )
        return
    limit = _max_entries * ENTRY_BYTES
    backend.grammar_compiler = module.GrammarCompiler(
        tokenizer_info=tokenizer_info, cache_limit_bytes=limit
    )
    _log_once("xgrammar", "forkpoint: xgrammar compiler cache bounded at %d MiB", limit >> 20)


def _patch_base(module: ModuleType) -> None:
    _wrap_init(module.BaseGrammarBackend, _bound_backend_cache)


def _patch_xgrammar(module: ModuleType) -> None:
    _wrap_init(module.XGrammarGrammarBackend, _bound_xgrammar_compiler)


_PATCHES: dict[str, Callable[[ModuleType], None]] = {
    _BASE_MODULE: _patch_base,
    _XGRAMMAR_MODULE: _patch_xgrammar,
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds SGLang's grammar modules through the other finders and patches them once loaded."""

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
