"""`forkpoint calibrate`: the first hour on a real server, one command.

Runs the same job (the generated corpus, or the user's own folder and task) through a grid of
server variants (perf/bench/variants.py), one server at a time — variants that differ only in client
settings (client_concurrency) share one — and writes into OUT:
  calibrate-<date>-<commit>-<profile>.json / .md   every variant's figures, side by side
  calibration.json          the projection's components measured on the base variant
                            (prefill tok/s with the server full, decode step at the running
                            batch): `perf/projection/project.py --calibration` reads it
  <profile>-calibrated.toml the winning variant as a profile `forkpoint runtime check` accepts
A variant may win only if it leaves no more documents without a valid answer than the base; of
those, the one with the least time per 1M tokens read and written. A variant whose server does not
start is reported as failed and the grid goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forkpoint.errors import ForkpointError
from forkpoint.perf.bench import probes
from forkpoint.perf.bench.bench import measure, run_direct
from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.variants import Variant
from forkpoint.perf.bench.workload import Workload
from forkpoint.perf.bench.workload import describe as describe_source
from forkpoint.perf.projection.project import CALIBRATION_KIND, CALIBRATION_VERSION
from forkpoint.programs.target import Target, resolve_target
from forkpoint.runtime.launcher import RuntimeServer
from forkpoint.runtime.profiles import LaunchProfile, save_profile


@dataclass(frozen=True)
class Plan:
    profile: LaunchProfile
    job: Workload
    variants: list[Variant]
    out: Path
    decode_steps: int = 32  # decode steps the step-time probe times
    peer: Callable[[LaunchProfile, Workload], dict] | None = None  # e.g. vLLM on the same job


@dataclass
class Outcome:
    report: dict[str, Any]
    files: list[Path] = field(default_factory=list)

    @property
    def winner(self) -> str:
        return self.report["winner"]


def calibrate(plan: Plan, say: Callable[[str], None] = print) -> Outcome:
    """Every variant over the job, the components on the base variant, the files written."""
    ran_on = describe()
    runs: dict[str, dict] = {}
    components: dict[str, Any] = {}
    base_answers: list = []
    with _Servers(say) as servers:
        for variant in _in_server_order(plan.variants, plan.profile):
            chosen = variant.apply(plan.profile)
            say(f"variant {variant.name}: {len(plan.job.documents)} documents ...")
            try:
                url = servers.serving(chosen)
                figures, answers, measured = _run_variant(variant.name, chosen, plan, url)
            except ForkpointError as exc:
                if variant.name == "base":
                    raise
                # "error", not "failed": a run's figures count its failed documents under "failed"
                runs[variant.name] = {"run": variant.name, "error": exc.message}
                say(f"variant {variant.name} failed: {exc.message}")
                continue
            if variant.name == "base":
                base_answers, components = answers, measured
            figures["overrides"] = variant.overrides
            figures["same_answers_as_base"] = _agreement(answers, base_answers)
            runs[variant.name] = figures
            say(f"variant {variant.name}: {figures['seconds_per_1m_tokens']} s per 1M tokens")
    if plan.peer is not None:
        say("peer ...")
        peer = plan.peer(plan.profile, plan.job)
        runs[peer["run"]] = peer
    report = {
        **ran_on,
        "profile": plan.profile.name,
        "task": plan.job.task.name,
        "corpus": plan.job.source,
        "runs": runs,
        "components": components,
        "winner": choose(runs),
    }
    return Outcome(report, _write(plan, report))


def server_command(profile: LaunchProfile) -> tuple:
    """What the server process is: two variants with the same command share one server."""
    # the embedded default has no model path until launch: the same for every variant
    concrete = profile.model_copy(update={"port": 0, "model_path": profile.model_path or "-"})
    return (*concrete.argv(), *sorted(profile.env.items()))


def _in_server_order(variants: list[Variant], profile: LaunchProfile) -> list[Variant]:
    """Base first, then the variants that run on base's server (client-side settings such as
    client_concurrency), then the rest: a server is started once per distinct command."""
    base = server_command(profile)
    return sorted(
        variants, key=lambda v: (v.name != "base", server_command(v.apply(profile)) != base)
    )


class _Servers:
    """One server at a time (a GPU holds one Mixtral), kept while variants share its command."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.server: RuntimeServer | None = None
        self.command: tuple | None = None

    def serving(self, profile: LaunchProfile) -> str:
        command = server_command(profile)
        if self.server is not None and command == self.command:
            self.say("  same server command: the running server is reused")
            return self.server.url
        self.stop()
        self.server = RuntimeServer(profile.model_copy(update={"port": 0})).start()
        self.command = command
        return self.server.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.server, self.command = None, None

    def __enter__(self) -> _Servers:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _run_variant(
    name: str, profile: LaunchProfile, plan: Plan, url: str
) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
    target = resolve_target(url, launched=profile)
    task, documents = plan.job.task, plan.job.documents
    run_direct(target, task, documents[:2], 2, warm=True, name="warm-up")
    outcome = run_direct(
        target, task, documents, profile.client_concurrency, warm=True, name="measured"
    )
    figures = measure(name, *outcome)
    measured: dict[str, Any] = {}
    if name == "base":
        running = min(
            profile.max_running_requests or profile.client_concurrency,
            profile.client_concurrency,
            len(documents),
        )
        texts = [text for _, text in documents[: max(running, 1)]]
        client = target.client()
        measured = {
            **probes.prefill_rate(client, target.prompt(task), texts),
            **probes.decode_step(client, running, plan.decode_steps),
        }
    figures["valid_rate"] = _valid_rate(figures)
    return figures, [r.data for r in outcome[0]], measured


def _agreement(answers: list, base: list) -> float | None:
    """Share of documents whose validated answer equals the base variant's."""
    if not base or len(answers) != len(base):
        return None
    same = sum(1 for a, b in zip(answers, base, strict=True) if a is not None and a == b)
    return round(same / len(base), 4)


def choose(runs: dict[str, dict]) -> str:
    """The fastest variant (time per 1M tokens) that is valid at least as often as the base."""
    base = runs["base"]
    eligible = [
        (run["seconds_per_1m_tokens"], name)
        for name, run in runs.items()
        if "peer" not in run  # another engine: compared, never written as our profile
        and "error" not in run
        and "skipped" not in run
        and run["seconds_per_1m_tokens"] is not None
        and run["valid_rate"] >= base["valid_rate"]
    ]
    return min(eligible)[1] if eligible else "base"


def vllm_peer(python: str) -> Callable[[LaunchProfile, Workload], dict]:
    """The same job through vLLM's OpenAI server, set up like the profile (model, tp, running
    requests, memory, KV dtype, quantization, ngram drafts); skipped, saying why, when `python`
    cannot import vllm."""
    from forkpoint.perf.peers.vllm_server import VllmServer, run_openai_peer, vllm_available

    def run(profile: LaunchProfile, job: Workload) -> dict:
        if reason := vllm_available(python):
            return {"run": "vllm", "skipped": reason}
        spec = profile.speculation
        server = VllmServer(
            python,
            profile.model_path or "",
            tp=profile.tp,
            max_num_seqs=profile.max_running_requests or profile.client_concurrency,
            gpu_memory_utilization=profile.mem_fraction_static or 0.9,
            kv_cache_dtype=None
            if profile.kv_cache_dtype in (None, "auto")
            else profile.kv_cache_dtype,
            quantization=profile.quantization,
            ngram_drafts=spec.num_draft_tokens if spec.algorithm else 0,
        )
        with server:
            # vLLM has no model info to check the format against: the profile's, as every
            # variant's (the same model)
            prompt = Target(server.url, profile.chat_format).prompt(job.task)
            model = server.model
            warm = job.documents[:2]
            run_openai_peer(server.url, model, prompt, job.task, warm, 2, 0)
            outcome = run_openai_peer(
                server.url, model, prompt, job.task, job.documents, profile.client_concurrency, 0
            )
        figures = measure("vllm", *outcome)
        figures["valid_rate"] = _valid_rate(figures)
        figures["peer"] = {"argv": server.argv()[1:]}
        return figures

    return run


def _valid_rate(figures: dict) -> float:
    return round((figures["ok"] + figures["needs_review"]) / max(figures["documents"], 1), 4)


def calibration_file(plan: Plan, report: dict) -> dict[str, Any]:
    """What perf/projection/project.py --calibration reads: the components, and the settings
    they ran at."""
    spec = plan.profile.speculation
    base = report["runs"]["base"]
    return {
        "kind": CALIBRATION_KIND,
        "version": CALIBRATION_VERSION,
        "profile": plan.profile.name,
        "machine": report["machine"],
        "date": report["date"],
        "commit": report["commit"],
        "components": {
            **report["components"],
            "draft_tokens": spec.num_draft_tokens if spec.algorithm else None,
            "accept_length": base.get("accept_length"),  # the job's own, not the probe's
            "probe_accept_length": report["components"].get("accept_length"),
        },
        "job": {
            key: base[key]
            for key in (
                "documents",
                "prompt_tokens",
                "cached_tokens",
                "computed_prefill_tokens",
                "output_tokens",
                "wall_seconds",
                "seconds_per_1m_tokens",
            )
        },
    }


def _write(plan: Plan, report: dict) -> list[Path]:
    plan.out.mkdir(parents=True, exist_ok=True)
    stem = plan.out / f"calibrate-{report['date'][:10]}-{report['commit'][:7]}-{plan.profile.name}"
    winner = next(v for v in plan.variants if v.name == report["winner"])
    tuned = winner.apply(plan.profile).model_copy(
        update={"name": f"{plan.profile.name}-calibrated"}
    )
    profile_path = plan.out / f"{tuned.name}.toml"
    save_profile(tuned, profile_path)
    calibration = plan.out / "calibration.json"
    calibration.write_text(json.dumps(calibration_file(plan, report), indent=2) + "\n")
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text("\n".join(markdown(report, profile_path)) + "\n")
    return [stem.with_suffix(".json"), stem.with_suffix(".md"), calibration, profile_path]


def markdown(report: dict, profile_path: Path) -> list[str]:
    details = (
        f"Profile: {report['profile']}. Task: {report['task']}. "
        f"Corpus: {describe_source(report['corpus'])}."
    )
    lines = heading("forkpoint calibrate", report, details)
    lines += [
        "| variant | valid | same answers as base | wall s | read tok/s | write tok/s "
        "| s per 1M tok | accept len |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, run in report["runs"].items():
        if "error" in run or "skipped" in run:
            lines.append(f"| {name} | {run.get('error') or run.get('skipped')} |" + " |" * 6)
            continue
        lines.append(
            f"| {name} | {run['ok'] + run['needs_review']}/{run['documents']} | "
            f"{run.get('same_answers_as_base', '–')} | {run['wall_seconds']} | "
            f"{run['read_tokens_per_second']} | {run['write_tokens_per_second']} | "
            f"{run['seconds_per_1m_tokens']} | {run.get('accept_length') or '–'} |"
        )
    c = report["components"]
    lines += [
        "",
        f"Components (base variant): prefill {c['prefill_tokens_per_second']} tok/s with "
        f"{c['prefill_requests']} requests at once; decode step {c['decode_step_seconds']} s at "
        f"batch {c['decode_batch']}.",
        "",
        f"Winner: **{report['winner']}** → `{profile_path.name}` "
        "(fastest per 1M tokens among variants valid at least as often as the base).",
    ]
    return lines
