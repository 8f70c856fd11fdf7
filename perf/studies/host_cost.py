"""The SGLang scheduler's host time per step, outside the forward pass, by batch size and draft
count, measured on this CPU with the real scheduler (cpu-small, grammar on every request).

    ./dev python perf/studies/host_cost.py                 # ~10 minutes on 2 cores
    ./dev python perf/studies/host_cost.py --waves 32 8 1 --drafts 4

One server per setting, one after another: NGRAM 4 drafts with a job corpus (2 slots, the
mixtral-awq-2x4090 profile's tree), NGRAM 8 drafts (cpu-small's) and speculation off. Each gets
waves of N documents sent at once (N = --waves): as answers finish the batch shrinks, so one wave
yields steps at every batch size up to N. The scheduler process carries timers
(host_cost_timers.py): per step, the wall and thread-CPU milliseconds of the loop iteration and
of the model forward and sampling; the rest is host time, what a GPU waits for. The NGRAM 4
server also runs a closed loop (--loop-clients requests kept in flight), whose prefill batches,
as SGLang's own log prints them, show the chunk the scheduler forms in steady state.
Saves perf/results/host-cost-<date>-<commit>.{json,md}; perf/projection/host_cost.py reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from forkpoint.perf.bench import direct
from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.results import add_out_argument
from forkpoint.perf.bench.results import save as save_results
from forkpoint.perf.studies.host_cost_timers import HOST
from forkpoint.programs.prompt import task_prompt
from forkpoint.programs.tasks.registry import get_task
from forkpoint.runtime import launcher
from forkpoint.runtime.client import RuntimeClient
from forkpoint.runtime.corpora import JobCorpora
from forkpoint.runtime.launcher import RuntimeServer
from forkpoint.runtime.profiles import Speculation, get_profile

SITE = Path(__file__).resolve().parent / "host_cost_site"
BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128)
PREFILL_LINE = re.compile(
    r"Prefill batch.*?#new-seq: (\d+), #new-token: (\d+), #cached-token: (\d+)"
)


def settings(drafts: list[int]) -> dict[int, Speculation]:
    base = get_profile("cpu-small").speculation
    chosen = {
        4: base.model_copy(update={"num_draft_tokens": 4, "external_sam_budget": 2}),
        8: base.model_copy(update={"num_draft_tokens": 8, "external_sam_budget": 0}),
        1: Speculation(),
    }
    return {d: chosen[d] for d in drafts}


def run_setting(
    drafts: int, spec: Speculation, docs: list[tuple[str, str]], args: argparse.Namespace
) -> tuple[list[dict[str, Any]], list[tuple[int, int, int]], dict[str, Any]]:
    """Steps of every wave; at 4 drafts, the closed loop's prefill batches; what SGLang's log
    says of the served accept length and batch (all waves, and the loop)."""
    profile = get_profile("cpu-small").model_copy(
        update={
            "port": 0,
            "speculation": spec,
            "max_running_requests": max(args.waves),
            "max_total_tokens": args.kv_tokens,
            # no OpenMP spin-waiting: a thread's CPU time is then its own work, not its wait
            "env": {**get_profile("cpu-small").env, "OMP_WAIT_POLICY": "PASSIVE"},
        }
    )
    task = get_task("invoices")
    prompt = task_prompt(task, profile.chat_format)
    sampling = {
        "temperature": 0,
        "max_new_tokens": args.max_new_tokens,
        "json_schema": task.constraint.schema_json,
    }
    log = Path(tempfile.mkstemp(prefix=f"host-cost-{drafts}-", suffix=".jsonl")[1])
    os.environ["FORKPOINT_HOST_COST_LOG"] = str(log)
    launcher.server_site_dir = lambda: SITE
    with RuntimeServer(profile) as server:
        client = RuntimeClient(server.url)
        if spec.external_sam_budget:
            JobCorpora(server.url, spec).register("host-cost", [text for _, text in docs])

        def one(doc: tuple[str, str]) -> None:
            direct.generate(client, prompt.full(doc[1]), sampling)

        direct.generate(client, prompt.full(docs[0][1]), sampling)  # warm-up
        log.write_text("")
        steps: list[dict[str, Any]] = []
        start = 0
        for wave in args.waves:
            with ThreadPoolExecutor(wave) as pool:
                list(pool.map(one, docs[start : start + wave]))
            start += wave
            steps += [json.loads(line) | {"wave": wave} for line in log.read_text().splitlines()]
            log.write_text("")
        prefills: list[tuple[int, int, int]] = []
        served: dict[str, Any] = {"waves": log_figures(server.log_path.read_text())}
        if drafts == 4 and args.loop_docs:
            mark = server.log_path.stat().st_size
            with ThreadPoolExecutor(args.loop_clients) as pool:
                list(pool.map(one, docs[start : start + args.loop_docs]))
            with open(server.log_path) as text:
                text.seek(mark)
                loop_log = text.read()
                served["loop"] = log_figures(loop_log)
                prefills = [tuple(map(int, m.groups())) for m in PREFILL_LINE.finditer(loop_log)]  # type: ignore[misc]
            steps += [json.loads(line) | {"wave": -1} for line in log.read_text().splitlines()]
    log.unlink()
    return steps, prefills, served


DECODE_LINE = re.compile(r"Decode batch, #running-req: (\d+),.*?accept len: ([\d.]+)")


def log_figures(text: str) -> dict[str, float | None]:
    """Served accept length and running batch from SGLang's "Decode batch" log lines."""
    found = [(int(b), float(a)) for b, a in DECODE_LINE.findall(text)]
    if not found:
        return {"accept_len": None, "running": None, "lines": 0}
    weight = sum(b for b, _ in found)
    return {
        "accept_len": round(sum(b * a for b, a in found) / weight, 3),
        "running": round(weight / len(found), 1),
        "lines": len(found),
    }


def host_ms(step: dict[str, Any], which: int, phases: tuple[str, ...] = HOST) -> float:
    """The scheduler's host phases of one step; which=0 wall, 1 thread CPU."""
    return float(sum(step[p][which] for p in phases))


def curve(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median host ms of decode steps by batch-size bucket, and its phases."""
    rows = []
    decode = [s for s in steps if s["mode"] in ("DECODE", "TARGET_VERIFY") and s["wave"] > 0]
    decode = [s for s in decode if s["bs"] > 0]
    for low, high in zip(BUCKETS, (*BUCKETS[1:], 10**9), strict=True):
        group = [s for s in decode if low <= s["bs"] < high]
        if not group:
            continue
        row: dict[str, Any] = {"bs": round(statistics.median(s["bs"] for s in group), 1)}
        row |= {
            "steps": len(group),
            "host_wall_ms": statistics.median(host_ms(s, 0) for s in group),
        }
        row["host_cpu_ms"] = statistics.median(host_ms(s, 1) for s in group)
        plain = tuple(p for p in HOST if p != "grammar")
        row["host_cpu_no_grammar_ms"] = statistics.median(host_ms(s, 1, plain) for s in group)
        row["step_ms"] = statistics.median(s["step"][0] for s in group)
        row["forward_ms"] = statistics.median(s["forward"][0] for s in group)
        for phase in HOST:  # thread CPU, the measure of the curve
            row[f"{phase}_ms"] = round(statistics.median(s[phase][1] for s in group), 3)
        rows.append(row)
    return rows


def fit(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    """host_ms = fixed + per_request · bs, least squares over the buckets (weighted by steps)."""
    w = [r["steps"] for r in rows]
    x = [r["bs"] for r in rows]
    y = [r[key] for r in rows]
    sw = sum(w)
    mx = sum(wi * xi for wi, xi in zip(w, x, strict=True)) / sw
    my = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / sw
    sxx = sum(wi * (xi - mx) ** 2 for wi, xi in zip(w, x, strict=True))
    sxy = sum(wi * (xi - mx) * (yi - my) for wi, xi, yi in zip(w, x, y, strict=True))
    slope = sxy / sxx if sxx else 0.0
    return {"fixed_ms": round(my - slope * mx, 3), "per_request_ms": round(slope, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, nargs="+", default=[4, 8, 1], choices=(1, 4, 8))
    parser.add_argument("--waves", type=int, nargs="+", default=[96, 24, 4])
    parser.add_argument("--loop-docs", type=int, default=96, help="closed loop, 4 drafts")
    parser.add_argument("--loop-clients", type=int, default=32)
    parser.add_argument("--kv-tokens", type=int, default=65536)
    parser.add_argument(
        "--max-new-tokens", type=int, default=40, help="short answers: steps, not answers, count"
    )
    add_out_argument(parser)
    args = parser.parse_args()
    spec = CorpusSpec(
        documents=sum(args.waves) + args.loop_docs + 1, min_tokens=60, max_tokens=150, seed=2
    )
    docs = generate(spec)
    load_before = os.getloadavg()
    results, prefills = {}, []
    for drafts, speculation in settings(args.drafts).items():
        steps, found, served = run_setting(drafts, speculation, docs, args)
        prefills += found
        rows = curve(steps)
        extend = [s for s in steps if s["mode"] == "EXTEND"]
        results[str(drafts)] = {
            "curve": rows,
            "fit_wall": fit(rows, "host_wall_ms"),
            "fit_cpu": fit(rows, "host_cpu_ms"),
            "fit_cpu_no_grammar": fit(rows, "host_cpu_no_grammar_ms"),
            "prefill_host_ms": statistics.median(host_ms(s, 0) for s in extend) if extend else None,
            "decode_steps": sum(r["steps"] for r in rows),
            "served": served,
        }
        print(drafts, results[str(drafts)]["fit_wall"], results[str(drafts)]["fit_cpu"], flush=True)
    seqs = [p[0] for p in prefills]
    report = {
        **describe(),
        "corpus": spec.__dict__,
        "waves": args.waves,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "settings": results,
        "closed_loop": {
            "clients": args.loop_clients,
            "documents": args.loop_docs,
            "prefill_batches": len(prefills),
            "new_seq_mean": round(statistics.mean(seqs), 2) if seqs else None,
            "new_seq_counts": {n: seqs.count(n) for n in sorted(set(seqs))},
            "new_tokens_mean": round(statistics.mean(p[1] for p in prefills), 1)
            if prefills
            else None,
        },
    }
    lines = heading(
        "Scheduler host time per step",
        report,
        f"cpu-small, invoices task (its json_schema grammar on every request, no copy fields), "
        f"answers cut at {args.max_new_tokens} tokens, documents of "
        f"{spec.min_tokens}-{spec.max_tokens} tokens, waves of {args.waves}; load average "
        f"{load_before[0]:.2f} before, {report['load_average_after'][0]:.2f} after (2 cores "
        "shared with other sessions).",
    )
    lines += [
        "| drafts | batch | steps | host CPU ms | host wall ms | draft | grammar | corpus "
        "| prepare | schedule | results | step wall ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in results.items():
        for r in result["curve"]:
            lines.append(
                f"| {name} | {r['bs']} | {r['steps']} | {r['host_cpu_ms']:.2f} | "
                f"{r['host_wall_ms']:.2f} | {r['draft_ms']:.2f} | {r['grammar_ms']:.2f} | "
                f"{r['corpus_ms']:.2f} | {r['prepare_ms']:.2f} | {r['schedule_ms']:.2f} | "
                f"{r['results_ms']:.2f} | {r['step_ms']:.0f} |"
            )
    lines.append("")
    for name, result in results.items():
        fw, fc = result["fit_wall"], result["fit_cpu"]
        lines.append(
            f"- {name} drafts: host CPU ms = {fc['fixed_ms']} + {fc['per_request_ms']} x batch "
            f"(wall {fw['fixed_ms']} + {fw['per_request_ms']} x batch)"
        )
    loop = report["closed_loop"]
    lines.append(
        f"- closed loop ({loop['clients']} clients, 4 drafts): {loop['prefill_batches']} prefill "
        f"batches in SGLang's log, {loop['new_seq_mean']} sequences and "
        f"{loop['new_tokens_mean']} new tokens each on average; by sequences: "
        f"{loop['new_seq_counts']}"
    )
    save_results("host-cost", report, lines, args.out)


if __name__ == "__main__":
    main()
