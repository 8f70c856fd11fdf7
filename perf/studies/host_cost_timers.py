"""Timers around the SGLang scheduler's phases, installed in the scheduler process by
perf/studies/host_cost_site/sitecustomize.py (perf/studies/host_cost.py starts the server so).

One JSON line per scheduler step that ran a batch, appended to $FORKPOINT_HOST_COST_LOG: the
batch size, the forward mode, and per phase the wall and the thread-CPU milliseconds:
  step      the whole loop iteration (ingest → get_next_batch_to_run → run_batch → results)
  forward   ModelRunner.forward: the model itself (a GPU's work on a GPU server)
  verify    eagle_sample: the tree verification's sampling (GPU kernels on a GPU server)
  sample    Sampler.forward: plain sampling (GPU kernels on a GPU server)
  draft     NGRAMWorker._prepare_for_speculative_decoding: trie/corpus lookup, tree indices
  corpus    NGRAMWorker._update_ngram_corpus: handing the step's tokens to the trie
  grammar   build_grammar_vocab_mask and _derive_tree_links: one xgrammar mask per draft token,
            request by request
  prepare   ForwardBatch.init_new;  ingest  Scheduler.ingest_requests
  schedule  Scheduler.get_next_batch_to_run;  results  Scheduler.process_batch_result
Host time per step = the sum of the HOST phases: the scheduler's CPU work that a GPU waits for
(NGRAM with a grammar runs synchronously, ngram_worker.py:239-245, 455-470). The rest of a
CPU step outside the forward is torch compute that a GPU server runs as kernels."""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

ENV = "FORKPOINT_HOST_COST_LOG"
PHASES = (
    "forward",
    "verify",
    "sample",
    "draft",
    "corpus",
    "grammar",
    "prepare",
    "ingest",
    "schedule",
    "results",
)
# The scheduler's own CPU work per step: what the GPU waits for on a GPU server.
HOST = ("draft", "corpus", "grammar", "prepare", "ingest", "schedule", "results")
_state = threading.local()

# (module, attribute path, phase)
TARGETS: tuple[tuple[str, str, str], ...] = (
    ("sglang.srt.model_executor.model_runner", "ModelRunner.forward", "forward"),
    ("sglang.srt.layers.sampler", "Sampler.forward", "sample"),
    ("sglang.srt.speculative.ngram_worker", "eagle_sample", "verify"),
    ("sglang.srt.speculative.ngram_worker", "build_grammar_vocab_mask", "grammar"),
    (
        "sglang.srt.speculative.ngram_worker",
        "NGRAMWorker._prepare_for_speculative_decoding",
        "draft",
    ),
    ("sglang.srt.speculative.ngram_worker", "NGRAMWorker._update_ngram_corpus", "corpus"),
    ("sglang.srt.speculative.ngram_worker", "_derive_tree_links", "grammar"),
    ("sglang.srt.model_executor.forward_batch_info", "ForwardBatch.init_new", "prepare"),
    ("sglang.srt.managers.scheduler", "Scheduler.get_next_batch_to_run", "schedule"),
    ("sglang.srt.managers.scheduler", "Scheduler.process_batch_result", "results"),
)


def _acc() -> dict[str, list[float]]:
    if not hasattr(_state, "acc"):
        _state.acc = {p: [0.0, 0.0] for p in PHASES}
        _state.depth = dict.fromkeys(PHASES, 0)
    acc: dict[str, list[float]] = _state.acc
    return acc


def _timed(phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        acc = _acc()
        depth = _state.depth
        if depth[phase]:  # re-entered (a forward inside a forward): count the outer call once
            return fn(*args, **kwargs)
        depth[phase] += 1
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            depth[phase] -= 1
            acc[phase][0] += time.perf_counter() - wall
            acc[phase][1] += time.thread_time() - cpu

    return wrapper


def _ingest(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The loop iteration starts at ingest_requests: reset the phase sums there."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _state.acc = {p: [0.0, 0.0] for p in PHASES}
        _state.depth = dict.fromkeys(PHASES, 0)
        _state.start = (time.perf_counter(), time.thread_time())
        return timed(*args, **kwargs)

    timed = _timed("ingest", fn)
    return wrapper


def _results(fn: Callable[..., Any], path: str) -> Callable[..., Any]:
    """process_batch_result ends the iteration: write the step's line."""
    timed = _timed("results", fn)

    @functools.wraps(fn)
    def wrapper(self: Any, batch: Any, result: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return timed(self, batch, result, *args, **kwargs)
        finally:
            start = getattr(_state, "start", None)
            if start is not None and batch is not None:
                acc = _acc()
                line = {
                    "bs": len(getattr(batch, "reqs", []) or []),
                    "mode": getattr(batch.forward_mode, "name", str(batch.forward_mode)),
                    "grammar": bool(getattr(batch, "has_grammar", False)),
                    "step": [
                        1e3 * (time.perf_counter() - start[0]),
                        1e3 * (time.thread_time() - start[1]),
                    ],
                } | {p: [1e3 * acc[p][0], 1e3 * acc[p][1]] for p in PHASES}
                line["new_tokens"] = int(getattr(batch, "extend_num_tokens", 0) or 0)
                with open(path, "a") as out:
                    out.write(json.dumps(line) + "\n")

    return wrapper


def _patch(module: ModuleType, path: str) -> None:
    for name, attr, phase in TARGETS:
        if name != module.__name__:
            continue
        owner: Any = module
        *parents, last = attr.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = (
            owner.__dict__.get(last, getattr(owner, last)) if parents else getattr(owner, last)
        )
        if isinstance(original, classmethod):
            setattr(owner, last, classmethod(_timed(phase, original.__func__)))
        else:
            setattr(owner, last, _timed(phase, original))
    if module.__name__ == "sglang.srt.managers.scheduler":
        scheduler = module.Scheduler
        scheduler.ingest_requests = _ingest(scheduler.ingest_requests)
        original = scheduler.process_batch_result.__wrapped__  # undo the plain timer above
        scheduler.process_batch_result = _results(original, path)


class _Finder(importlib.abc.MetaPathFinder):
    """Patch each target module right after it is executed."""

    def __init__(self, path: str) -> None:
        self.path, self.names = path, {t[0] for t in TARGETS}

    def find_spec(self, fullname: str, target_path: Any, target: Any = None) -> Any:
        if fullname not in self.names:
            return None
        self.names.discard(fullname)
        spec = importlib.machinery.PathFinder.find_spec(fullname, target_path)
        if spec is None or spec.loader is None:
            return spec
        loader, log = spec.loader, self.path

        class Loader(importlib.abc.Loader):
            def create_module(self, spec: Any) -> Any:
                return loader.create_module(spec)

            def exec_module(self, module: ModuleType) -> None:
                loader.exec_module(module)
                _patch(module, log)

        spec.loader = Loader()
        return spec


def install() -> None:
    """Add the timers to this process if $FORKPOINT_HOST_COST_LOG names a file."""
    path = os.environ.get(ENV)
    if path:
        sys.meta_path.insert(0, _Finder(path))
