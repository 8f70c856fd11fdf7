"""Host cores the copy-field grammars need, as measured by perf/studies/copy_compile.py: SGLang
compiles each document's grammar with xgrammar on every tensor-parallel rank (its tracker has
this open for tp > 1), so a server running D documents a second keeps
compile seconds per document x D x tp host cores busy compiling, beside the GPU time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from forkpoint.perf import RECORDS

KIND = "copy-compile"


@dataclass(frozen=True)
class CompileCost:
    source: str  # the results file
    machine: str
    version: str  # the copy_grammar.py measured: the report's newest
    compile_s_per_doc: float  # xgrammar, one thread, on this CPU
    build_s_per_doc: float  # forkpoint building the EBNF, in the gateway

    def cores(self, docs_per_second: float, tp: int) -> float:
        """Host cores busy compiling at `docs_per_second` on `tp` ranks."""
        return self.compile_s_per_doc * docs_per_second * tp


def load(path: Path | None = None) -> CompileCost | None:
    """The newest measurement, or None when none is committed (an installed forkpoint)."""
    found = sorted(RECORDS.glob(f"{KIND}-*.json")) if path is None else [path]
    if not found:
        return None
    data = json.loads(found[-1].read_text())
    version, summary = list(data["summary"].items())[-1]  # the last one measured is the newest
    return CompileCost(
        source=found[-1].name,
        machine=data.get("machine", ""),
        version=data["commit"][:7] if version == "working tree" else version,
        compile_s_per_doc=summary["compile_s_per_doc"],
        build_s_per_doc=summary["build_ms_per_doc"] / 1e3,
    )
