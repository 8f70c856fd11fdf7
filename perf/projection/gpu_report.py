"""The projection as a report: one dict (the --json form) and its tables for a reader. Every
figure in it is PROJECTED unless it says measured."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from forkpoint.perf.projection import grammar_compile
from forkpoint.perf.projection.draft_tree import SOURCE as TREE_SOURCE
from forkpoint.perf.projection.gpu_assumptions import SCENARIOS, Assumptions
from forkpoint.perf.projection.gpu_model import AUTOAWQ_PROMPT, AUTOAWQ_PUBLISHED
from forkpoint.perf.projection.gpu_projection import (
    Anchor,
    Job,
    accept_at,
    accept_needed,
    as_dict,
    configurations,
    project_range,
    sensitivity,
    written_per_step,
)
from forkpoint.perf.projection.gpu_step import (
    Setup,
    autoawq_check,
    break_even_accept,
    decode_step,
    host_curve,
    pool_tokens,
)

BATCHES = (1, 16, 48, 64, 96, 128, 160, 192, 256)  # rows of the decode table: around 48 and 128
KV_DTYPES = (("fp16", 2), ("fp8_e5m2", 1))


def build(
    job: Job,
    setup: Setup,
    accepts: list[float],
    anchor: Anchor | None,
    source: dict[str, Any],
    replayed: Callable[[Setup], float | None] = lambda setup: None,
) -> dict[str, Any]:
    """Everything the projection says, as plain data."""
    configs = []
    for name, config, config_job in configurations(job, setup, accepts, replayed):
        outcomes = project_range(config_job, config, anchor)
        configs.append(
            {"name": name, "mid": as_dict(outcomes["mid"])}
            | {"total_s": {w: round(o.total_s, 1) for w, o in outcomes.items()}}
        )
    return {
        "projected": True,
        "source": source,
        "job": asdict(job)
        | {"doc_tokens": job.doc_tokens, "context": job.context, "tokens": job.tokens},
        "setup": asdict(setup),
        "measured": asdict(anchor) if anchor else None,
        "draft_tree": {
            "max_tokens_per_step": setup.tree.max_tokens_per_step,
            "trie": setup.tree.trie,
            "per_corpus": setup.tree.per_corpus,
            "corpora": setup.corpora,
            "accept_at_drafts": accept_at(setup.draft_tokens, job.accept_length),
            "tokens_per_step": written_per_step(setup, job.accept_length),
            "source": TREE_SOURCE,
        },
        "host_cost": host_summary(setup),
        "range": (ranges := {w: as_dict(o) for w, o in project_range(job, setup, anchor).items()}),
        "grammar_compile": compile_summary(job, setup, ranges),
        "sensitivity": sensitivity(job, setup, anchor),
        "configurations": configs,
        "decode_by_batch": decode_by_batch(job, setup, accepts[0]),
        "pool_sequences": pool_sequences(job, setup),
        "autoawq_check": {w: autoawq_check(Assumptions.at(w)) for w in SCENARIOS}
        | {"published": AUTOAWQ_PUBLISHED, "prompt": AUTOAWQ_PROMPT},
    }


def decode_by_batch(job: Job, setup: Setup, accept: float) -> list[dict]:
    """The model's decode step (mid, no calibration) at a range of batches, per draft count."""
    mid, rows = Assumptions.at("mid"), []
    for batch in BATCHES:
        row: dict = {"batch": batch}
        for drafts in (1, 4, 8):
            config = replace(setup, draft_tokens=drafts)
            step = decode_step(config, mid, batch, job.context).total
            row[f"step_ms_{drafts}"] = round(step * 1e3, 1)
            row[f"write_{drafts}"] = round(batch * written_per_step(config, accept) / step)
            if drafts > 1:
                even = break_even_accept(config, mid, batch, job.context)
                row[f"break_even_{drafts}"] = round(even, 2)
                needed = accept_needed(drafts, even)  # None: this many drafts cannot break even
                row[f"break_even_{drafts}_at_8"] = round(needed, 2) if needed < drafts else None
        rows.append(row)
    return rows


def host_summary(setup: Setup) -> dict[str, Any]:
    """The measured host curve at the setup's draft count, for the reader."""
    curve = host_curve()
    return {
        "source": curve.source,
        "machine": curve.machine,
        "drafts": setup.draft_tokens,
        "ms_by_batch": {b: round(curve.ms(b, setup.draft_tokens), 2) for b in (1, 32, 64, 128)},
        "prefill_batch_ms": round(curve.prefill_ms, 2),
    }


def compile_summary(job: Job, setup: Setup, ranges: dict[str, dict]) -> dict[str, Any] | None:
    """Host cores compiling copy-field grammars at each end's documents/s (measured per
    document on this CPU; SGLang compiles on every rank), beside the GPU time."""
    cost = grammar_compile.load()
    if cost is None:
        return None
    return {
        "source": cost.source,
        "machine": cost.machine,
        "copy_grammar_version": cost.version,
        "compile_s_per_doc": cost.compile_s_per_doc,
        "tp": setup.cards,
        "cores": {
            w: round(cost.cores(job.docs / ranges[w]["total_s"], setup.cards), 2) for w in SCENARIOS
        },
    }


def _n(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def text(report: dict) -> str:
    """The tables a reader sees."""
    job, setup, ranges = report["job"], report["setup"], report["range"]
    spec = f"NGRAM {setup['draft_tokens']} drafts" if setup["draft_tokens"] > 1 else "off"
    kv = "fp16" if setup["kv_dtype_bytes"] == 2 else "fp8_e5m2"
    lines = [
        "PROJECTED: 2x RTX 4090, Mixtral-8x7B-Instruct AWQ (awq_marlin), tp=2, SGLang 0.5.23 "
        "- a model, not a measurement",
        f"Job ({report['source']['report']}, run {report['source']['run']}): {job['docs']:,} "
        f"docs, {job['prompt_tokens']:,} prompt tokens ({job['prefix_tokens']:,}-token shared "
        f"prefix), {job['computed_prefill_tokens']:,} computed after prefix reuse, "
        f"{job['output_tokens']:,} written; {job['tokens']:,} read+written",
        f"Tokens: {job['tokenizer']}"
        + (f"; accept: {report['source']['accept']}" if report["source"].get("accept") else ""),
        f"Setup: speculation {spec}, accept {job['accept_length']:g} at 8 drafts, "
        f"max_running {setup['max_running']}, client concurrency {setup['concurrency']}, "
        f"decode graphs to {setup['graph_max_bs']}, KV {kv}, PCIe x{setup['pcie_lanes']}",
    ]
    tree, host = report["draft_tree"], report["host_cost"]
    if setup["draft_tokens"] > 1:
        lines.append(
            f"Draft tree: {setup['draft_tokens']} tokens = root + trie {tree['trie']} + "
            f"{tree['corpora']} corpus x {tree['per_corpus']}: at most "
            f"{tree['max_tokens_per_step']} tokens per step ({tree['source']}); accept "
            f"{tree['accept_at_drafts']:.2f} at {setup['draft_tokens']} drafts -> "
            f"{tree['tokens_per_step']:.2f} per step"
        )
    lines.append(
        f"Host time per step (measured, {host['source']}, {host['machine']}; x0.5-1.0 for the "
        f"server's CPU): "
        + ", ".join(f"{ms} ms at batch {b}" for b, ms in host["ms_by_batch"].items())
        + f"; {host['prefill_batch_ms']} ms per prefill batch"
    )
    compiles = report["grammar_compile"]
    if compiles:
        lines.append(
            f"Copy-field grammar compiles (measured, {compiles['source']}, {compiles['machine']}):"
            f" {compiles['compile_s_per_doc']} s CPU per document per rank, x tp={compiles['tp']}"
            " -> host cores busy compiling, low/mid/high: "
            + " / ".join(f"{compiles['cores'][w]:g}" for w in SCENARIOS)
        )
    if report["measured"]:
        m = report["measured"]
        lines.append(
            f"Measured ({m['profile']}, forkpoint calibrate): prefill "
            f"{_n(m['prefill_tokens_per_second'])} tok/s replaces the model's; decode step "
            f"{m['decode_step_seconds'] * 1e3:.1f} ms at batch {m['decode_batch']} "
            f"(drafts {m['draft_tokens'] or 1}) anchors the step model's fixed cost; low/high "
            "still name the assumption ends, the fitted fixed cost absorbs part of their gap"
        )
    rows = [
        ("running batch", "batch", 1),
        ("tokens per step", "tokens_per_step", 2),
        ("prefill chunk tokens", "prefill_chunk", 0),
        (
            "prefill tok/s" + (" (measured)" if report["measured"] else ""),
            "prefill_tokens_per_s",
            0,
        ),
        ("decode step ms", "step_ms", 1),
        ("write tok/s", "write_tokens_per_s", 0),
        ("prefill s", "prefill_s", 0),
        ("decode s", "decode_s", 0),
        ("total s", "total_s", 0),
        ("minutes per 1M tokens", "minutes_per_1m", 2),
    ]
    lines += ["", f"{'PROJECTED':<28}" + "".join(f"{w:>10}" for w in SCENARIOS)]
    for label, key, digits in rows:
        lines.append(
            f"  {label:<26}" + "".join(f"{_n(ranges[w][key], digits):>10}" for w in SCENARIOS)
        )
    lines += [
        "",
        "PROJECTED sensitivity: one assumption from its fast to its slow end, rest at mid",
    ]
    lines.append(
        f"  {'assumption':<22}{'fast':>8}{'slow':>8}  {'unit':<14}{'total s':>16}{'effect':>9}"
    )
    for r in report["sensitivity"]:
        span = f"{r['total_s_fast']:.0f}-{r['total_s_slow']:.0f}"
        lines.append(
            f"  {r['assumption']:<22}{r['fast']:>8g}{r['slow']:>8g}  {r['unit']:<14}{span:>16}"
            f"{r['effect_s']:>+8.0f}s"
        )
    lines += ["", "PROJECTED configurations (mid; total s over low/mid/high)"]
    lines.append(
        f"  {'configuration':<46}{'batch':>7}{'step ms':>9}{'write/s':>9}{'total s':>9}  range"
    )
    for c in report["configurations"]:
        m, t = c["mid"], c["total_s"]
        lines.append(
            f"  {c['name']:<46}{m['batch']:>7.1f}{m['step_ms']:>9.1f}"
            f"{_n(m['write_tokens_per_s']):>9}{m['total_s']:>9.0f}"
            f"  {min(t.values()):.0f}-{max(t.values()):.0f}"
        )
    lines += [
        "",
        f"PROJECTED decode by batch (model, mid): step ms, break-even accept length (tokens per"
        f" step at that draft count; in brackets the same at 8 drafts), write tok/s at accept"
        f" {job['accept_length']:g}",
        f"  {'batch':>5}{'step off':>9}{'4 drafts':>9}{'8 drafts':>9}{'even 4':>14}{'even 8':>8}"
        f"{'write off':>10}{'4 drafts':>9}{'8 drafts':>9}",
    ]
    for r in report["decode_by_batch"]:
        at_8 = r["break_even_4_at_8"]
        even_4 = f"{r['break_even_4']:.2f} ({'never' if at_8 is None else f'{at_8:.2f}'})"
        lines.append(
            f"  {r['batch']:>5}{r['step_ms_1']:>9}{r['step_ms_4']:>9}{r['step_ms_8']:>9}"
            f"{even_4:>14}{r['break_even_8']:>8.2f}{_n(r['write_1']):>10}"
            f"{_n(r['write_4']):>9}{_n(r['write_8']):>9}"
        )
    pool = report["pool_sequences"]
    lines.append(
        f"  KV pool (mid) holds {pool['fp16']} sequences in fp16, {pool['fp8_e5m2']} in fp8"
    )
    check = report["autoawq_check"]
    pub = check["published"]
    lines += [
        "",
        f"Check: AutoAWQ's published setup (layer split, batch 1, HF generate, "
        f"{check['prompt']}-token prompt), PROJECTED low/mid/high vs published:",
        "  prefill tok/s "
        + " / ".join(_n(check[w]["prefill_tokens_per_s"]) for w in SCENARIOS)
        + f"  vs {_n(pub['prefill_tokens_per_s'][0])}-{_n(pub['prefill_tokens_per_s'][1])}",
        "  decode tok/s  "
        + " / ".join(_n(check[w]["decode_tokens_per_s"]) for w in SCENARIOS)
        + f"  vs {_n(pub['decode_tokens_per_s'][0])}-{_n(pub['decode_tokens_per_s'][1])}",
        "Sources and assumptions: perf/projection/gpu_model.py and gpu_assumptions.py.",
    ]
    return "\n".join(lines)


def pool_sequences(job: Job, setup: Setup) -> dict[str, int]:
    """Sequences the KV pool holds at mid, fp16 and fp8 (for the reader of the batch table)."""
    mid = Assumptions.at("mid")
    pools = {kv: pool_tokens(replace(setup, kv_dtype_bytes=b), mid) for kv, b in KV_DTYPES}
    return {kv: int((p - job.prefix_tokens) / job.sequence_tokens) for kv, p in pools.items()}


def markdown(report: dict) -> str:
    """The README's projection tables, generated so they cannot drift from the model."""
    ranges, job = report["range"], report["job"]
    rows = [
        ("total s", "total_s", 0),
        ("minutes per 1M tokens read + written", "minutes_per_1m", 2),
        ("tokens written per sequence per step", "tokens_per_step", 2),
        ("running batch", "batch", 0),
        ("prefill chunk, tokens", "prefill_chunk", 0),
        ("decode step, ms", "step_ms", 1),
    ]
    lines = ["| PROJECTED | low | mid | high |", "|---|---:|---:|---:|"]
    for label, key, digits in rows:
        cells = " | ".join(_n(ranges[w][key], digits) for w in SCENARIOS)
        lines.append(f"| {label} | {cells} |")
    lines += ["", "| assumption, fast → slow (rest at mid) | total s | effect |", "|---|---:|---:|"]
    for r in report["sensitivity"]:
        lines.append(
            f"| {r['assumption']} {r['fast']:g} → {r['slow']:g} {r['unit']} | "
            f"{r['total_s_fast']:.0f}–{r['total_s_slow']:.0f} | {r['effect_s']:+.0f} s |"
        )
    lines += ["", "| setting (mid) | tokens per step | total s |", "|---|---:|---:|"]
    for c in report["configurations"]:
        m = c["mid"]
        lines.append(f"| {c['name']} | {m['tokens_per_step']:.2f} | {m['total_s']:.0f} |")
    lines.append("")
    lines.append(
        f"Job: {job['docs']:,} documents, {job['prompt_tokens']:,} prompt tokens "
        f"({job['computed_prefill_tokens']:,} computed after prefix reuse), "
        f"{job['output_tokens']:,} written; tokens: {job['tokenizer']}."
    )
    compiles = report["grammar_compile"]
    if compiles:
        cores = " / ".join(f"{compiles['cores'][w]:g}" for w in SCENARIOS)
        lines.append(
            f"Copy-field grammars: {compiles['compile_s_per_doc']} s of xgrammar compile per "
            f"document per rank (measured on this CPU, {compiles['source']}), on tp="
            f"{compiles['tp']} ranks: {cores} host cores busy compiling at low / mid / high."
        )
    return "\n".join(lines)
