"""`forkpoint calibrate`: a grid of server variants over one job, measured on real servers; the
components the projection models, and the winner as a profile that starts a server."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forkpoint.cli.main import app
from forkpoint.errors import ProfileError
from forkpoint.perf.bench.calibrate import _in_server_order, choose, server_command, vllm_peer
from forkpoint.perf.bench.variants import Variant, default_axes, grid, parse_axis
from forkpoint.perf.bench.workload import load_workload
from forkpoint.runtime.profiles import get_profile, save_profile
from forkpoint.runtime.sglang_args import check_profile

runner = CliRunner()
PROJECT = Path(__file__).resolve().parents[2] / "perf" / "projection" / "project.py"


def test_an_axis_is_a_field_and_its_values_read_as_json_none_or_text():
    assert parse_axis("speculation.num_draft_tokens=4,8") == (
        "speculation.num_draft_tokens",
        [4, 8],
    )
    assert parse_axis("speculation.algorithm=none,NGRAM") == (
        "speculation.algorithm",
        [None, "NGRAM"],
    )
    assert parse_axis("compact_json=true") == ("compact_json", [True])
    with pytest.raises(ProfileError, match="is not FIELD=V1,V2"):
        parse_axis("client_concurrency")


def test_the_grid_changes_one_field_at_a_time_and_skips_the_profiles_own_value():
    cpu = get_profile("cpu-small")  # 8 drafts, 32 streams
    variants = grid(cpu, ["speculation.num_draft_tokens=4,8", "client_concurrency=16,32"])
    assert [v.name for v in variants] == [
        "base",
        "speculation.num_draft_tokens=4",
        "client_concurrency=16",
    ]
    four = variants[1].apply(cpu)
    assert four.speculation.num_draft_tokens == 4
    assert four.model_copy(update={"speculation": cpu.speculation}) == cpu  # nothing else moved


def test_a_variant_naming_a_missing_field_or_a_bad_value_is_a_clear_error():
    cpu = get_profile("cpu-small")
    with pytest.raises(ProfileError, match="'speculation.drafts' is not a profile field"):
        Variant("x", {"speculation.drafts": 4}).apply(cpu)
    with pytest.raises(ProfileError, match="field 'client_concurrency'"):
        Variant("y", {"client_concurrency": 0}).apply(cpu)


def test_the_default_grid_of_the_gpu_profile_measures_what_the_projection_models():
    mixtral = get_profile("mixtral-awq-2x4090")
    axes = default_axes(mixtral)
    names = {parse_axis(axis)[0] for axis in axes}
    assert {
        "speculation.algorithm",
        "client_concurrency",
        "kv_cache_dtype",
        "cuda_graph_max_bs_decode",
    } <= names
    for variant in grid(mixtral, axes):  # every variant is a profile SGLang's parser accepts
        check_profile(variant.apply(mixtral))


def test_the_winner_is_the_fastest_variant_that_is_valid_as_often_as_the_base():
    runs = {
        "base": {"seconds_per_1m_tokens": 100.0, "valid_rate": 0.9},
        "fast-but-wrong": {"seconds_per_1m_tokens": 50.0, "valid_rate": 0.8},
        "faster": {"seconds_per_1m_tokens": 80.0, "valid_rate": 0.9},
        "broken": {"error": "did not start"},
        "some-failed": {"seconds_per_1m_tokens": 70.0, "valid_rate": 0.9, "failed": 1},
        "vllm": {"seconds_per_1m_tokens": 10.0, "valid_rate": 1.0, "peer": {"argv": []}},
    }
    assert choose(runs) == "some-failed"  # its failed documents are in its valid rate
    del runs["some-failed"]
    assert choose(runs) == "faster"
    assert (
        choose({"base": runs["base"], "slow": {**runs["faster"], "seconds_per_1m_tokens": 120.0}})
        == "base"
    )


@pytest.mark.slow
def test_calibrate_on_the_embedded_default_writes_a_report_a_calibration_and_a_profile(tmp_path):
    out = tmp_path / "calibration"
    done = runner.invoke(
        app,
        [
            "calibrate",
            "--profile",
            "cpu-small",
            "--docs",
            "2",  # a running batch of 2: the decode probe runs at the job's batch, not at 1
            "--decode-steps",
            "4",
            "--vary",
            "speculation.algorithm=none",
            "--out",
            str(out),
        ],
    )
    assert done.exit_code == 0, done.output
    report_path = next(out.glob("calibrate-*-cpu-small.json"))
    report = json.loads(report_path.read_text())
    assert set(report["runs"]) == {"base", "speculation.algorithm=off"}
    base, off = report["runs"]["base"], report["runs"]["speculation.algorithm=off"]
    assert base["documents"] == off["documents"] == 2
    assert base["output_tokens"] > 0 and base["accept_length"] > 1  # the profile speculates
    assert off.get("accept_length") is None and off["overrides"] == {"speculation.algorithm": None}
    assert base["same_answers_as_base"] == 1.0
    eligible = {n: r for n, r in report["runs"].items() if r["valid_rate"] >= base["valid_rate"]}
    assert report["winner"] == min(eligible, key=lambda n: eligible[n]["seconds_per_1m_tokens"])
    table = (out / report_path.name).with_suffix(".md").read_text()
    assert table.startswith("# forkpoint calibrate")
    valid = base["ok"] + base["needs_review"]
    assert f"| base | {valid}/2 | 1.0 | {base['wall_seconds']} |" in table
    # the components the projection models, measured on the base variant
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["kind"] == "forkpoint-calibration" and calibration["version"] == 1
    parts = calibration["components"]
    assert parts["prefill_tokens_per_second"] > 0 and parts["prefill_computed_tokens"] > 0
    assert parts["decode_step_seconds"] > 0 and parts["decode_batch"] == 2
    assert parts["draft_tokens"] == 8 and parts["accept_length"] == base["accept_length"]
    projected = subprocess.run(
        [sys.executable, str(PROJECT), "--calibration", str(out / "calibration.json"), "--json"],
        capture_output=True,
        text=True,
    )
    assert projected.returncode == 0, projected.stderr
    assert "measured" in projected.stdout
    # the winner, written as a profile: SGLang's parser accepts it, and it is exactly the profile
    # of the variant whose server calibrate started and ran the job on (the report has its
    # figures), so it starts a server without a third start here
    written = get_profile(str(out / "cpu-small-calibrated.toml"))
    check_profile(written)
    winner_algorithm = None if report["winner"] == "speculation.algorithm=off" else "NGRAM"
    assert written.speculation.algorithm == winner_algorithm
    ran = {
        "base": Variant("base"),
        "speculation.algorithm=off": Variant("off", {"speculation.algorithm": None}),
    }
    served = ran[report["winner"]].apply(get_profile("cpu-small"))
    assert written == served.model_copy(update={"name": "cpu-small-calibrated"})
    assert report["runs"][report["winner"]]["documents"] == 2  # its server answered the job


TRIAGE_TASK = """
from typing import Literal
from pydantic import BaseModel, Field
from forkpoint.programs.tasks.task import Example, ExtractionTask

class Triage(BaseModel):
    kind: Literal["invoice", "letter", "other"]
    title: str = Field(max_length=24)
    urgent: bool

TASK = ExtractionTask(
    name="triage", description="What kind of document this is.",
    instructions="Classify the document and give it a short title.", output_model=Triage,
    examples=(Example("Invoice 7 from Alder Ltd, due now.",
                      Triage(kind="invoice", title="Alder invoice 7", urgent=True)),),
    max_output_tokens=96)
"""


@pytest.mark.slow
def test_calibrate_runs_the_users_folder_and_task_on_the_tiny_mixtral(tmp_path, tiny_mixtral_path):
    """The production model family (random weights, real Mixtral tokenizer and template)."""
    (tmp_path / "triage_task.py").write_text(TRIAGE_TASK)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(3):
        (inbox / f"letter-{i}.txt").write_text(f"Letter {i} from Birch Ltd about the order.")
    mixtral, cpu = get_profile("mixtral-awq-2x4090"), get_profile("cpu-small")
    tiny = cpu.model_copy(
        update={
            "name": "tiny-mixtral",
            "model_path": str(tiny_mixtral_path),
            "chat_format": mixtral.chat_format,
            "speculation": cpu.speculation.model_copy(update={"algorithm": None}),
            "max_total_tokens": 8192,
            "context_length": 4096,
            "client_concurrency": 3,
        }
    )
    save_profile(tiny, tmp_path / "tiny-mixtral.toml")
    out = tmp_path / "out"
    done = runner.invoke(
        app,
        [
            "calibrate",
            str(inbox),
            "--profile",
            str(tmp_path / "tiny-mixtral.toml"),
            "--task-module",
            f"{tmp_path / 'triage_task.py'}:TASK",
            "--decode-steps",
            "4",
            "--vary",
            "client_concurrency=1",
            "--out",
            str(out),
        ],
    )
    assert done.exit_code == 0, done.output
    # client_concurrency is the client's setting: its variant ran on base's server
    assert "same server command: the running server is reused" in done.output
    report = json.loads(next(out.glob("calibrate-*-tiny-mixtral.json")).read_text())
    assert report["task"] == "triage" and report["corpus"]["kind"] == "folder"
    assert set(report["runs"]) == {"base", "client_concurrency=1"}
    assert all(run["documents"] == 3 for run in report["runs"].values())
    assert report["runs"]["base"]["valid_rate"] == 1.0  # the bounded schema always closes
    # greedy answers do not depend on how many documents are in flight... up to batch numerics
    assert report["runs"]["client_concurrency=1"]["same_answers_as_base"] is not None
    written = get_profile(str(out / "tiny-mixtral-calibrated.toml"))
    assert written.chat_format == "mixtral-v1" and written.model_path == tiny.model_path


def test_variants_of_client_settings_share_the_base_server_and_run_right_after_it():
    profile = get_profile("mixtral-awq-2x4090")
    variants = grid(profile, ["cuda_graph_max_bs_decode=48", "client_concurrency=128"])
    ordered = [v.name for v in _in_server_order(variants, profile)]
    assert ordered == ["base", "client_concurrency=128", "cuda_graph_max_bs_decode=48"]
    commands = {v.name: server_command(v.apply(profile)) for v in variants}
    assert commands["client_concurrency=128"] == commands["base"]
    assert commands["cuda_graph_max_bs_decode=48"] != commands["base"]
    embedded = get_profile("cpu-small")  # no model path until launch
    variants = grid(embedded, ["client_concurrency=4", "speculation.algorithm=none"])
    names = [v.name for v in _in_server_order(variants, embedded)]
    assert names == ["base", "client_concurrency=4", "speculation.algorithm=off"]


def test_without_vllm_the_peer_is_skipped_saying_why(tmp_path):
    # a Python that cannot import vllm wherever the suite runs: this one without site-packages
    without_site = tmp_path / "python-without-site"
    without_site.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    without_site.chmod(0o755)
    job = load_workload(docs=2, min_tokens=80, max_tokens=120)
    run = vllm_peer(str(without_site))(get_profile("mixtral-awq-2x4090"), job)
    assert run["run"] == "vllm" and "No module named 'vllm'" in run["skipped"]
    assert (
        choose({"base": {"seconds_per_1m_tokens": 9.0, "valid_rate": 1.0}, "vllm": run}) == "base"
    )
