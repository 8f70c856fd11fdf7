"""Project a measured extraction job onto one 2×RTX 4090 server running Mixtral-8x7B AWQ (tp=2).

A model, not a measurement: it takes what a perf/bench/bench.py run measured that does not depend on
the hardware (documents, prompt tokens, tokens computed after prefix reuse, tokens written, the
shared prefix, the speculative accept length) and prints the same job's time on the GPU server
as a range (every assumption at its fast end / halfway / its slow end), which assumption moves
it most, and the settings side by side. Every figure is PROJECTED.

    ./dev python perf/projection/project.py --from perf/results/bench-....json [--run baseline]
    ./dev python perf/projection/project.py --accept-length 2.0 5.29 --draft-tokens 4 --json
    ./dev python perf/projection/project.py --kv-dtype fp8_e5m2
    ./dev python perf/projection/project.py --calibration out/calibration.json

With --calibration (written by `forkpoint calibrate` on the real server) the measured prefill
rate replaces the modeled one and the decode step model is anchored to the measured step.
The model, in perf/projection/: gpu_model.py (facts), gpu_assumptions.py (ranges), gpu_step.py
(the steps), gpu_projection.py (the job), gpu_report.py (the tables).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from forkpoint.perf import RECORDS
from forkpoint.perf.projection import mixtral_tokens
from forkpoint.perf.projection.draft_tree import replayed
from forkpoint.perf.projection.gpu_model import SGLANG_GRAPH_MAX_BS
from forkpoint.perf.projection.gpu_projection import Anchor, Job, accept_needed
from forkpoint.perf.projection.gpu_report import build, markdown, text
from forkpoint.perf.projection.gpu_step import Setup
from forkpoint.runtime.profiles import LaunchProfile, get_profile

# the full-size job the README reports, a committed record (a checkout has it)
FULL_SIZE = RECORDS / "bench-2026-11-30-bf8fb1c-1000docs.json"
CALIBRATION_KIND, CALIBRATION_VERSION = "forkpoint-calibration", 1  # forkpoint calibrate writes it
KV_BYTES = {"fp16": 2, "fp8_e5m2": 1}


def measured_job(report: dict, run: str, tokenizer: str = "mixtral") -> Job:
    """The token counts one run of a perf/bench/bench.py report measured; with the "mixtral"
    tokenizer, re-counted as Mixtral counts them where a count of the same corpus is committed
    (mixtral_tokens.py), else as measured (the small model's tokenizer)."""
    figures = report.get("runs", {}).get(run)
    if not figures or "prompt_tokens" not in figures:
        known = ", ".join(
            name for name, f in report.get("runs", {}).items() if "prompt_tokens" in f
        )
        raise SystemExit(f"the report has no measured run {run!r} (measured: {known or 'none'})")
    job = Job(
        docs=figures["documents"],
        prompt_tokens=figures["prompt_tokens"],
        computed_prefill_tokens=figures["computed_prefill_tokens"],
        output_tokens=figures["output_tokens"],
        prefix_tokens=figures.get("prefix_tokens") or 0,
        accept_length=figures.get("accept_length") or 1.0,
    )
    spec = report.get("corpus")
    counts = mixtral_tokens.newest(spec) if tokenizer == "mixtral" and spec else None
    return mixtral_tokens.as_mixtral(job, counts) if counts else job


def read_calibration(path: Path) -> Anchor:
    """The components a `forkpoint calibrate` run measured; anything else is a clear error."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"cannot read calibration file {path}: {exc}") from exc
    kind, version = data.get("kind"), data.get("version")
    if (kind, version) != (CALIBRATION_KIND, CALIBRATION_VERSION):
        raise SystemExit(
            f"{path} is not a forkpoint calibration file: kind {kind!r} version {version!r}, "
            f"expected {CALIBRATION_KIND!r} version {CALIBRATION_VERSION} "
            "(written by `forkpoint calibrate`)"
        )
    c = data.get("components", {})
    try:
        return Anchor(
            profile=str(data.get("profile")),
            prefill_tokens_per_second=float(c["prefill_tokens_per_second"]),
            decode_step_seconds=float(c["decode_step_seconds"]),
            decode_batch=int(c["decode_batch"]),
            draft_tokens=c.get("draft_tokens"),
            accept_length=c.get("accept_length"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SystemExit(f"{path}: components lack a usable {exc}") from exc


def profile_setup(profile: LaunchProfile) -> Setup:
    """The settings of a launch profile that the model has a knob for."""
    spec = profile.speculation
    running = profile.max_running_requests or Setup.max_running
    return Setup(
        draft_tokens=spec.num_draft_tokens if spec.algorithm else 1,
        max_running=running,
        concurrency=profile.client_concurrency,
        graph_max_bs=min(profile.cuda_graph_max_bs_decode or SGLANG_GRAPH_MAX_BS, running),
        kv_dtype_bytes=1 if (profile.kv_cache_dtype or "auto").startswith("fp8") else 2,
        mem_fraction_static=profile.mem_fraction_static or Setup.mem_fraction_static,
        sam_budget=spec.external_sam_budget if spec.algorithm else 0,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--from", dest="source", type=Path, default=FULL_SIZE, help="a perf/bench/bench.py report"
    )
    parser.add_argument("--run", default="baseline", help="which of its runs (default: baseline)")
    parser.add_argument(
        "--accept-length",
        type=float,
        nargs="+",
        help="accept lengths at 8 drafts; the first sets the range (default: measured, 2.0)",
    )
    parser.add_argument(
        "--profile", default="mixtral-awq-2x4090", help="the server settings (flags override)"
    )
    parser.add_argument("--draft-tokens", type=int, help="1 (or 0): no speculation")
    parser.add_argument("--max-running", type=int)
    parser.add_argument("--concurrency", type=int, help="client requests in flight")
    parser.add_argument("--graph-max-bs", type=int, help="decode CUDA-graph batch")
    parser.add_argument("--kv-dtype", choices=sorted(KV_BYTES))
    parser.add_argument("--pcie-lanes", type=int, choices=(8, 16), default=16)
    parser.add_argument("--calibration", type=Path, help="calibration.json of forkpoint calibrate")
    parser.add_argument(
        "--corpora", type=int, default=1, help="job corpora loaded at once (jobs running)"
    )
    parser.add_argument(
        "--tokenizer",
        choices=("mixtral", "measured"),
        default="mixtral",
        help="count the job with Mixtral's tokenizer (default) or as the report measured it",
    )
    parser.add_argument("--json", action="store_true", help="the machine form")
    parser.add_argument(
        "--markdown", action="store_true", help="the README's projection tables (README.md)"
    )
    args = parser.parse_args(argv)

    if not args.source.is_file():  # an installed forkpoint has no committed records
        raise SystemExit(f"no bench report at {args.source}: give one with --from REPORT.json")
    job = measured_job(json.loads(args.source.read_text()), args.run, args.tokenizer)
    anchor = read_calibration(args.calibration) if args.calibration else None
    profile = get_profile(args.profile)
    setup = profile_setup(profile)
    overrides = {
        "draft_tokens": None if args.draft_tokens is None else max(1, args.draft_tokens),
        "max_running": args.max_running,
        "concurrency": args.concurrency,
        "graph_max_bs": args.graph_max_bs,
        "kv_dtype_bytes": KV_BYTES[args.kv_dtype] if args.kv_dtype else None,
        "pcie_lanes": args.pcie_lanes,
        "corpora": args.corpora,
    }
    setup = replace(setup, **{k: v for k, v in overrides.items() if v is not None})
    accepts = args.accept_length or [job.accept_length, 2.0]
    replay = replayed(setup.tree, profile.speculation.max_bfs_breadth)
    if replay and not args.accept_length:
        # the job in Mixtral's tokens replayed at this very tree: it leads; the small model's
        # served accept length follows (capped by the tree)
        accepts = [round(accept_needed(setup.draft_tokens, replay[0]), 3), *accepts]
    if anchor and anchor.accept_length and not args.accept_length:
        accepts = [anchor.accept_length, *accepts]  # measured on the server: it leads
    job = Job(**{**job.__dict__, "accept_length": accepts[0]})
    try:
        shown = args.source.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = args.source
    source = {"report": str(shown), "run": args.run}
    if replay and not args.accept_length and not (anchor and anchor.accept_length):
        source["accept"] = f"{replay[0]} tokens per step replayed at this tree ({replay[1]})"
    bfs = profile.speculation.max_bfs_breadth

    def at_tree(config: Setup) -> float | None:
        found = replayed(config.tree, bfs)
        return found[0] if found and not args.accept_length else None

    report = build(job, setup, accepts, anchor, source, at_tree)
    if args.markdown:
        print(markdown(report))
    else:
        print(json.dumps(report, indent=2) if args.json else text(report))


if __name__ == "__main__":
    main()
