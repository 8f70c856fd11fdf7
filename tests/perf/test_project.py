"""The GPU projection: each component from the model config, then the CLI on a saved report."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from forkpoint.perf.projection.gpu_assumptions import RANGES, Assumptions
from forkpoint.perf.projection.gpu_model import AUTOAWQ_PUBLISHED, Mixtral
from forkpoint.perf.projection.gpu_projection import (
    PROBE_CONTEXT,
    Anchor,
    Job,
    accept_at,
    accept_needed,
    project,
    step_seconds,
)
from forkpoint.perf.projection.gpu_step import (
    Setup,
    autoawq_check,
    break_even_accept,
    decode_step,
    pool_tokens,
)
from forkpoint.runtime.profiles import get_profile

PERF = Path(__file__).resolve().parents[2] / "perf"
FULL_SIZE = PERF / "results" / "bench-2026-11-30-bf8fb1c-1000docs.json"  # the measured default job
MIXTRAL, MID = Mixtral(), Assumptions.at("mid")
JOB = Job(1000, 1_451_183, 581_013, 209_335, 857, 5.293)  # the full-size report's counts


def project_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PERF / "projection" / "project.py"), *args],
        capture_output=True,
        text=True,
    )


def test_flops_per_token_come_from_the_mixtral_config():
    assert MIXTRAL.active_params == pytest.approx(12.9e9, rel=0.01)
    assert MIXTRAL.active_expert_params == pytest.approx(11.3e9, rel=0.01)
    assert MIXTRAL.matmul_flops() == pytest.approx(2 * 12.9e9, rel=0.02)
    # the checkpoint's three shards: 9.97 + 9.98 + 4.70 GB
    assert MIXTRAL.weight_bytes == pytest.approx(24.65e9, rel=0.005)


def test_kv_bytes_per_token_per_card_at_tp2():
    assert MIXTRAL.kv_bytes_per_token(2) == 2 * 32 * 8 * 128 * 2 == 131_072
    assert MIXTRAL.kv_bytes_per_token(2, shards=2) == 65_536
    assert MIXTRAL.kv_bytes_per_token(1, shards=2) == 32_768  # fp8_e5m2


def test_allreduce_bytes_per_token_are_two_per_layer_of_the_fp16_hidden_state():
    assert MIXTRAL.allreduce_bytes_per_token == 2 * 32 * 4096 * 2 == 524_288


def test_the_pool_is_card_memory_at_the_static_fraction_less_half_the_weights():
    free = 24564 * 2**20 * 0.88 - MIXTRAL.weight_bytes / 2 - MID.runtime_reserve_gib * 2**30
    assert pool_tokens(Setup(), MID) == int(free / 65_536)
    assert pool_tokens(Setup(kv_dtype_bytes=1), MID) == pytest.approx(2 * int(free / 65_536), 1)


def test_the_running_batch_is_bounded_by_max_running_the_pool_and_the_documents():
    assert project(JOB, Setup(max_running=64, concurrency=96), MID).batch == 64
    # no cap from the server: the pool decides, the shared prefix stored once
    by_pool = (pool_tokens(Setup(), MID) - 857) / JOB.sequence_tokens
    assert project(JOB, Setup(max_running=1000, concurrency=2000), MID).batch == by_pool
    assert project(replace(JOB, docs=10), Setup(concurrency=200), MID).batch <= 10


def test_concurrency_equal_to_max_running_leaves_the_batch_below_it():
    equal = project(JOB, Setup(concurrency=128), MID).batch
    above = project(JOB, Setup(concurrency=192), MID).batch
    assert 100 < equal < 128
    assert above == 128


def test_decode_runs_eager_above_sglangs_graph_batch_of_48():
    assert decode_step(Setup(), MID, 48, 1500).launch == 0
    assert decode_step(Setup(), MID, 49, 1500).launch == pytest.approx(32 * 65e-6)
    assert decode_step(Setup(graph_max_bs=128), MID, 128, 1500).launch == 0


def test_break_even_accept_length_rises_with_the_batch():
    # below ~16 sequences verifying more tokens also wakes more experts, so start there
    evens = [break_even_accept(Setup(), MID, b, 1556) for b in (16, 48, 128, 256)]
    assert evens == sorted(evens)
    assert 1 < evens[0] < evens[-1] < 8


def test_accept_lengths_convert_between_draft_counts():
    assert accept_at(8, 5.293) == pytest.approx(5.293)
    assert 2 < accept_at(4, 5.293) < 4
    assert accept_at(1, 5.293) == 1.0
    assert accept_needed(4, accept_at(4, 3.0)) == pytest.approx(3.0, rel=1e-6)


def test_autoawqs_published_batch_one_figures_lie_inside_the_projected_range():
    """AutoAWQ's setup: accelerate layer split (the cards take turns: no all-reduce, no
    parallel speed-up), batch 1, HF generate's eager launches."""
    fast, slow = autoawq_check(Assumptions.at("low")), autoawq_check(Assumptions.at("high"))
    for figure, (published_low, published_high) in AUTOAWQ_PUBLISHED.items():
        assert slow[figure] <= published_low < published_high <= fast[figure]


def test_a_calibration_anchors_the_step_at_its_batch_and_keeps_the_batch_dependence():
    anchor = Anchor("mixtral-awq-2x4090", 4000.0, 0.12, 64, 8, 3.1)
    probe = Setup(grammar=False)
    for where in ("low", "mid", "high"):
        step = step_seconds(probe, Assumptions.at(where), anchor)
        assert step(64, PROBE_CONTEXT) == pytest.approx(0.12)
        assert step(32, PROBE_CONTEXT) < step(64, PROBE_CONTEXT) < step(128, PROBE_CONTEXT)
    assert project(JOB, Setup(), MID, anchor).prefill_tokens_per_s == pytest.approx(4000.0)


def test_a_bench_report_gives_the_projection_its_measured_token_counts():
    baseline = json.loads(FULL_SIZE.read_text())["runs"]["baseline"]
    done = project_cli(
        "--from", str(FULL_SIZE), "--accept-length", "2.0", "--tokenizer", "measured", "--json"
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    job = answer["job"]
    assert answer["projected"] is True
    assert job["docs"] == baseline["documents"] == 1000
    assert job["prompt_tokens"] == baseline["prompt_tokens"] == 1_451_183
    assert job["computed_prefill_tokens"] == baseline["computed_prefill_tokens"] == 581_013
    assert job["output_tokens"] == baseline["output_tokens"] == 209_335
    assert job["prefix_tokens"] == baseline["prefix_tokens"] == 857
    # speculation is the projection's setting, not the small CPU model's accept length; the
    # server settings are the Mixtral profile's
    mixtral = get_profile("mixtral-awq-2x4090")
    assert (job["accept_length"], answer["setup"]["draft_tokens"]) == (
        2.0,
        mixtral.speculation.num_draft_tokens,
    )
    assert answer["setup"]["max_running"] == mixtral.max_running_requests
    assert answer["setup"]["graph_max_bs"] == mixtral.cuda_graph_max_bs_decode
    assert answer["setup"]["concurrency"] == mixtral.client_concurrency
    totals = [answer["range"][w]["total_s"] for w in ("low", "mid", "high")]
    assert 0 < totals[0] < totals[1] < totals[2]


def test_by_default_the_job_is_counted_in_mixtrals_tokens():
    answer = json.loads(project_cli("--json").stdout)
    job = answer["job"]
    assert job["tokenizer"].startswith("mixtral (mixtral-tokens-")
    assert job["docs"] == 1000
    assert job["prompt_tokens"] > 1_451_183  # Mixtral's 32k pieces split this text finer
    assert job["prefix_tokens"] > 857


def test_the_range_never_writes_more_per_step_than_the_draft_tree_accepts():
    """The acceptance check of issue 29: at any accept length, any configuration."""
    for accept in ("2.0", "5.293", "8.0"):
        answer = json.loads(project_cli("--accept-length", accept, "--json").stdout)
        tree = answer["draft_tree"]
        assert tree["max_tokens_per_step"] == 3  # 4 drafts, 2 for the job corpus
        for where in ("low", "mid", "high"):
            assert answer["range"][where]["tokens_per_step"] <= tree["max_tokens_per_step"]
        assert all(c["mid"]["tokens_per_step"] <= 8 for c in answer["configurations"])


def test_the_printed_range_cites_the_tree_and_the_measured_host_curve():
    out = project_cli().stdout
    assert "at most 3 tokens per step (sglang 0.5.23 kernels/jit/csrc/ngram_corpus/ngram.cpp" in out
    assert "Host time per step (measured, host-cost-" in out


def test_the_full_size_report_prints_the_range_the_sensitivity_and_the_configurations():
    done = project_cli("--from", str(FULL_SIZE))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("PROJECTED")
    assert "total s" in out and "minutes per 1M tokens" in out
    assert all(name in out for name in RANGES)
    for config in (
        "speculation off",
        "NGRAM 4 drafts, accept 5.293",
        "NGRAM 8 drafts, accept 2",
        "KV cache fp8_e5m2",
        "decode CUDA graphs to 48",  # SGLang's own cap, beside the profile's 128
        "client concurrency 128 = max_running",  # beside the profile's 160
    ):
        assert config in out
    effects = json.loads(project_cli("--json").stdout)["sensitivity"]
    sizes = [abs(row["effect_s"]) for row in effects]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 0


def test_the_fp8_kv_profile_projects_a_larger_pool_and_a_shorter_job():
    fp16 = json.loads(project_cli("--json").stdout)
    fp8 = json.loads(project_cli("--profile", "mixtral-awq-2x4090-fp8kv", "--json").stdout)
    assert fp8["setup"]["kv_dtype_bytes"] == 1 and fp16["setup"]["kv_dtype_bytes"] == 2
    assert fp8["range"]["mid"]["pool_tokens"] > 1.9 * fp16["range"]["mid"]["pool_tokens"]
    assert fp8["range"]["mid"]["total_s"] < fp16["range"]["mid"]["total_s"]


def test_a_run_the_report_does_not_hold_is_a_clear_error():
    done = project_cli("--from", str(FULL_SIZE), "--run", "gateway")
    assert done.returncode != 0
    assert "no measured run 'gateway' (measured: baseline)" in done.stderr


def test_a_calibration_names_what_it_measured(tmp_path):
    components = {"prefill_tokens_per_second": 3500.0, "decode_step_seconds": 0.08}
    components |= {"decode_batch": 48, "draft_tokens": None, "accept_length": None}
    written = {"kind": "forkpoint-calibration", "version": 1, "profile": "p"}
    written |= {"components": components, "job": {"documents": 8}}  # other keys: ignored
    calibration = tmp_path / "calibration.json"
    calibration.write_text(json.dumps(written))
    done = project_cli("--calibration", str(calibration))
    assert done.returncode == 0, done.stderr
    assert "prefill tok/s (measured)" in done.stdout
    assert "decode step 80.0 ms at batch 48" in done.stdout


def test_a_file_of_another_kind_is_not_a_calibration(tmp_path):
    other = tmp_path / "bench.json"
    other.write_text(json.dumps({"kind": "forkpoint-calibration", "version": 2}))
    done = project_cli("--calibration", str(other))
    assert done.returncode != 0
    assert "is not a forkpoint calibration file: kind 'forkpoint-calibration' version 2" in (
        done.stderr
    )
