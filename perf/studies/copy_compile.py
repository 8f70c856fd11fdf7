"""What a copy-field grammar costs per document (#29 item 4): building it here, compiling it in
SGLang, and masking with it while decoding.

Over the bench's generated invoices (perf/bench workload, seed 1, 300-1500 tokens; the invoices
task with its copy fields), per document:
- build: CPU seconds of `CopyGrammar.for_document` (time.thread_time; it holds the GIL);
- EBNF: its size in UTF-8 bytes (what each /generate request carries);
- compile: CPU seconds of xgrammar's `GrammarCompiler.compile_grammar` on the embedded model's
  tokenizer (SmolLM2, as the emulated runtime and SGLang's xgrammar backend build it), one
  thread, cache off (time.process_time: xgrammar's own threads count too);
- mask: microseconds per `fill_next_token_bitmask` over the document's correct answer (the
  corpus's ground truth), token by token, as the scheduler does once per decoded token.

Host cores a server needs for compiles alone: compile CPU s per document × documents/s × TP
ranks (SGLang compiles each request's grammar on every rank).

`--against REV` also measures programs/copy_grammar.py as it was at git revision REV, each
document with both versions in alternating order (same load), and checks that both grammars
accept the document's answer.

    ./dev python perf/studies/copy_compile.py --docs 150 --against HEAD~1

Saves perf/results/copy-compile-<date>-<commit>-<N>docs.{json,md}.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from forkpoint.perf.bench import workload
from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.results import add_out_argument, save, write
from forkpoint.perf.emulated.recording import invoice_answer

ROOT = Path(__file__).resolve().parents[2]
DOCS_PER_SECOND = 5.18  # the projected mixtral-awq-2x4090 rate (perf/emulated/service.py)
TP = 2


def at_revision(rev: str) -> ModuleType:
    """programs/copy_grammar.py as it was at git revision `rev`, imported as its own module."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:programs/copy_grammar.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    name = f"forkpoint.programs._copy_grammar_{rev.replace('~', '_').replace('^', '_')}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    exec(compile(source, f"{rev}:programs/copy_grammar.py", "exec"), module.__dict__)
    return module


class Compiler:
    """xgrammar on the embedded model's tokenizer, as SGLang's backend builds it, one thread."""

    def __init__(self) -> None:
        import xgrammar
        from transformers import AutoConfig, AutoTokenizer

        from forkpoint.runtime.embedded_model import ensure_smollm2

        path = ensure_smollm2()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        vocab = AutoConfig.from_pretrained(str(path)).vocab_size
        info = xgrammar.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=vocab)
        self.compiler = xgrammar.GrammarCompiler(info, max_threads=1, cache_enabled=False)
        self.bitmask = xgrammar.allocate_token_bitmask(1, info.vocab_size)
        self.xgrammar = xgrammar

    def compile(self, ebnf: str) -> tuple[Any, float, float]:
        """The compiled grammar, its CPU seconds (the process's) and wall seconds."""
        cpu, wall = time.process_time(), time.perf_counter()
        compiled = self.compiler.compile_grammar(ebnf)
        return compiled, time.process_time() - cpu, time.perf_counter() - wall

    def mask(self, compiled: Any, answer: str) -> tuple[bool, int, float]:
        """Whether the grammar accepts `answer` token by token, its tokens, and the CPU
        microseconds per token of filling the next-token mask before each."""
        matcher = self.xgrammar.GrammarMatcher(compiled, terminate_without_stop_token=True)
        tokens = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
        spent = 0.0
        for token in tokens:
            started = time.thread_time()
            matcher.fill_next_token_bitmask(self.bitmask)
            spent += time.thread_time() - started
            if not matcher.accept_token(token):
                return False, len(tokens), 1e6 * spent / len(tokens)
        return matcher.is_terminated(), len(tokens), 1e6 * spent / len(tokens)


def build(for_document: Callable[[str], str], document: str) -> tuple[str, float]:
    started = time.thread_time()
    ebnf = for_document(document)
    return ebnf, time.thread_time() - started


def measure(
    versions: dict[str, Any], job: workload.Workload, compiler: Compiler, mask_docs: int
) -> list[dict[str, Any]]:
    rows = []
    for n, (name, text) in enumerate(job.documents):
        truth = invoice_answer(text)
        # as the task decodes it: xgrammar's separators without free whitespace are ", " and ": "
        answer = json.dumps(truth, ensure_ascii=False) if truth is not None else None
        row: dict[str, Any] = {"document": name, "chars": len(text)}
        order = list(versions.items())
        for label, grammar in order if n % 2 == 0 else order[::-1]:
            ebnf, build_s = build(grammar.for_document, text)
            compiled, compile_s, compile_wall = compiler.compile(ebnf)
            entry: dict[str, Any] = {
                "build_ms": round(1e3 * build_s, 3),
                "ebnf_bytes": len(ebnf.encode()),
                "compile_s": round(compile_s, 4),
                "compile_wall_s": round(compile_wall, 4),
            }
            if answer is not None and n < mask_docs:
                accepted, tokens, per_token = compiler.mask(compiled, answer)
                entry |= {"accepts_answer": accepted, "answer_tokens": tokens}
                entry["mask_us_per_token"] = round(per_token, 1)
            row[label] = entry
        rows.append(row)
        print(n, name, len(text), {k: row[k] for k in versions}, flush=True)
    return rows


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def fit(chars: list[int], seconds: list[float]) -> tuple[float, float]:
    """Least squares of compile seconds = a × chars + b × chars² (xgrammar builds a parser whose
    set-up walks every rule of the grammar for each of its scannable states)."""
    import numpy as np

    n = np.array(chars, dtype=float)
    (a, b), *_ = np.linalg.lstsq(np.stack([n, n * n], axis=1), np.array(seconds), rcond=None)
    return float(a), float(b)


def summary(rows: list[dict[str, Any]], label: str, rate: float, tp: int) -> dict[str, Any]:
    entries = [row[label] for row in rows]

    def mean(key: str) -> float:
        values = [e[key] for e in entries if key in e]
        return statistics.fmean(values) if values else float("nan")

    chars = statistics.fmean(row["chars"] for row in rows)
    linear, square = fit([row["chars"] for row in rows], [e["compile_s"] for e in entries])
    masked = [e for e in entries if "accepts_answer" in e]
    return {
        "build_ms_per_doc": round(mean("build_ms"), 2),
        "build_ms_p90": round(p90([e["build_ms"] for e in entries]), 2),
        "ebnf_bytes_per_doc": round(mean("ebnf_bytes")),
        "ebnf_bytes_per_char": round(mean("ebnf_bytes") / chars, 1),
        "compile_s_per_doc": round(mean("compile_s"), 4),
        "compile_s_p90": round(p90([e["compile_s"] for e in entries]), 4),
        "mask_us_per_token": round(mean("mask_us_per_token"), 1),
        "answers_accepted": f"{sum(e['accepts_answer'] for e in masked)}/{len(masked)}",
        "host_cores": round(mean("compile_s") * rate * tp, 2),
        "build_cores": round(mean("build_ms") / 1e3 * rate, 3),
        "compile_fit": {
            "us_per_char": round(1e6 * linear, 2),
            "ns_per_char_squared": round(1e9 * square, 4),
            "quadratic_share_at_mean": round(square * chars / (linear + square * chars), 3),
        },
    }


def markdown(report: dict[str, Any]) -> list[str]:
    rate, tp = report["docs_per_second"], report["tp"]
    lines = heading(
        "Copy-field grammars: build, size, compile, mask",
        report,
        f"Corpus: {workload.describe(report['corpus'])}; task {report['task']} (copy fields "
        f"{', '.join(report['copy_fields'])}). Load: {report['load']}.",
    )
    lines += [
        f"| version | build ms/doc (p90) | EBNF bytes/doc (per char) | compile CPU s/doc (p90) "
        f"| mask µs/token | answers accepted | host cores for compiles at {rate} docs/s, tp={tp} "
        "| cores building |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, s in report["summary"].items():
        lines.append(
            f"| {label} | {s['build_ms_per_doc']} ({s['build_ms_p90']}) "
            f"| {s['ebnf_bytes_per_doc']:,} ({s['ebnf_bytes_per_char']}) "
            f"| {s['compile_s_per_doc']} ({s['compile_s_p90']}) | {s['mask_us_per_token']} "
            f"| {s['answers_accepted']} | {s['host_cores']} | {s['build_cores']} |"
        )
    lines.append("")
    for label, s in report["summary"].items():
        f = s["compile_fit"]
        lines.append(
            f"- {label}: compile ≈ {f['us_per_char']} µs × chars + {f['ns_per_char_squared']} ns × "
            f"chars²; the squared term is {f['quadratic_share_at_mean']:.0%} of the mean "
            "document's compile."
        )
    lines += ["", report["legend"]]
    return lines


LEGEND = (
    "build: CPU of CopyGrammar.for_document in the calling thread (time.thread_time; GIL held). "
    "compile: xgrammar GrammarCompiler.compile_grammar on SmolLM2's tokenizer (49,152 tokens), "
    "max_threads=1, cache off, time.process_time. mask: thread CPU of fill_next_token_bitmask "
    "per token of the document's ground-truth answer (JSON with the grammar's separators), as "
    "SGLang fills it once per decoded token (more per step with speculative verification). "
    "host cores for compiles: compile s/doc × docs/s × TP ranks (SGLang compiles on every "
    "rank); cores building: build s/doc × docs/s in the gateway. Versions run on the same "
    "documents in alternating order. CPU times on a shared 2-core machine: contention inflates "
    "them."
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=150)
    parser.add_argument("--mask-docs", type=int, default=30, help="documents whose mask is timed")
    parser.add_argument("--against", help="also measure copy_grammar.py at this git revision")
    parser.add_argument("--docs-per-second", type=float, default=DOCS_PER_SECOND)
    parser.add_argument("--tp", type=int, default=TP)
    parser.add_argument("--render", type=Path, help="re-summarize a saved JSON report, no run")
    add_out_argument(parser)
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads(args.render.read_text())
        rate, tp, rows = report["docs_per_second"], report["tp"], report["documents"]
        labels = list(report["summary"])
        report["summary"] = {label: summary(rows, label, rate, tp) for label in labels}
        write(args.render.with_suffix(""), report, markdown(report))
        return

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    job = workload.load_workload(docs=args.docs)
    task = job.task
    task.compile(copy_grammar=True)
    assert task.copy_grammar is not None
    versions: dict[str, Any] = {}
    if args.against:
        old = at_revision(args.against)
        new = task.copy_grammar  # the same schema side; only the per-document rules differ
        versions[args.against] = old.CopyGrammar(new.base_ebnf, new.copy_fields, new.bounds)
    versions["working tree"] = task.copy_grammar
    compiler = Compiler()
    warm = job.documents[0][1]
    for grammar in versions.values():  # one warm-up each
        compiler.compile(grammar.for_document(warm))
    load_before = os.getloadavg()
    rows = measure(versions, job, compiler, args.mask_docs)
    load_after = os.getloadavg()
    rate, tp = args.docs_per_second, args.tp
    report = {
        **describe(),
        "task": task.name,
        "copy_fields": list(task.copy_grammar.copy_fields),
        "corpus": job.source,
        "docs_per_second": rate,
        "tp": tp,
        "load": f"1-minute load average {load_before[0]:.2f} at the start, {load_after[0]:.2f} "
        f"at the end, on {os.cpu_count()} cores",
        "flags": {k: str(v) for k, v in vars(args).items()},
        "legend": LEGEND,
        "summary": {label: summary(rows, label, rate, tp) for label in versions},
        "documents": rows,
    }
    save("copy-compile", report, markdown(report), args.out, suffix=f"-{len(rows)}docs")


if __name__ == "__main__":
    main()
