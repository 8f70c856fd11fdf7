"""`forkpoint doctor`: each check from recorded nvidia-smi outputs, and a clean run on this box."""

import re
import shutil
from pathlib import Path

from typer.testing import CliRunner

from forkpoint.cli.main import app
from forkpoint.runtime.doctor import Doctor
from forkpoint.runtime.nvidia_smi import (
    GPU_QUERY,
    LINK_QUERY,
    P2P_QUERY,
    CommandOutput,
    PcieLink,
    parse_gpus,
    parse_links,
    parse_p2p,
)
from forkpoint.runtime.profiles import get_profile

RECORDED = Path(__file__).parent / "nvidia_smi"
MIXTRAL = get_profile("mixtral-awq-2x4090")
CPU = get_profile("cpu-small")
runner = CliRunner()


def replay(query_file: str | None, topo_file: str | None = None, link_file: str | None = None):
    """A Runner answering nvidia-smi from recorded files; None means nvidia-smi is missing."""

    def run(argv):
        if query_file is None:
            return None
        answers = {
            tuple(GPU_QUERY): query_file,
            tuple(P2P_QUERY): topo_file,
            tuple(LINK_QUERY): link_file,
        }
        if recorded := answers.get(tuple(argv)):
            return CommandOutput(0, (RECORDED / recorded).read_text())
        return CommandOutput(1, "", "unexpected command")

    return run


def gpu_checks(profile, query, topo=None, env=None, link=None):
    doctor = Doctor(profile, runner=replay(query, topo, link), env=env or {})
    return {check.name: check for check in doctor.gpus()}


def test_parsing_nvidia_smi_query_and_p2p_matrix():
    [gpu0, gpu1] = parse_gpus((RECORDED / "query-2x4090.csv").read_text())
    assert (gpu1.index, gpu1.name, gpu1.memory_mib, gpu1.driver) == (
        1,
        "NVIDIA GeForce RTX 4090",
        24564,
        "580.95.05",
    )
    assert parse_p2p((RECORDED / "topo-p2p-2x4090.txt").read_text()) == {(0, 1): "NS", (1, 0): "NS"}


def test_two_4090s_without_p2p_pass_because_the_profile_disables_nccl_p2p():
    checks = gpu_checks(MIXTRAL, "query-2x4090.csv", "topo-p2p-2x4090.txt")
    assert checks["gpus"].status == "pass" and "RTX 4090 24564 MiB" in checks["gpus"].detail
    assert checks["driver"].status == "pass"
    assert checks["p2p"].status == "pass"
    assert "NCCL_P2P_DISABLE=1 is set" in checks["p2p"].detail


def test_no_p2p_and_no_nccl_override_fails_with_the_fix():
    profile = MIXTRAL.model_copy(update={"env": {}})
    checks = gpu_checks(profile, "query-2x4090.csv", "topo-p2p-2x4090.txt")
    assert checks["p2p"].status == "fail"
    assert checks["p2p"].fix == "set NCCL_P2P_DISABLE=1 in the profile's env"


def test_gpus_with_p2p_pass_without_the_override():
    profile = MIXTRAL.model_copy(update={"env": {}})
    checks = gpu_checks(profile, "query-2x4090.csv", "topo-p2p-2xa6000-nvlink.txt")
    assert checks["p2p"].status == "pass" and "peer-to-peer OK" in checks["p2p"].detail


def test_one_gpu_on_an_old_driver_fails_count_and_driver():
    checks = gpu_checks(MIXTRAL, "query-1x4090-old-driver.csv")
    assert checks["gpus"].status == "fail" and "profile needs 2" in checks["gpus"].detail
    assert checks["driver"].status == "fail" and "550.54.14" in checks["driver"].detail


def test_no_gpu_fails_a_gpu_profile_and_passes_the_cpu_profile():
    [gpu_profile] = gpu_checks(MIXTRAL, None).values()
    assert gpu_profile.status == "fail"
    assert gpu_profile.detail == "no GPU (nvidia-smi not found)"
    [cpu_profile] = gpu_checks(CPU, None).values()
    assert cpu_profile.status == "pass" and "runs on the CPU" in cpu_profile.detail


def test_pcie_links_and_power_limits_are_parsed_with_unknowns_as_none():
    [gpu0, gpu1] = parse_links((RECORDED / "link-2x4090-gen3-slot-300w.csv").read_text())
    assert gpu0 == PcieLink(0, 1, 4, 4, 16, 16, 450.0, 450.0)
    assert (gpu1.gen_max, gpu1.gen_card, gpu1.power_limit_w) == (3, 4, 300.0)
    [unknown] = parse_links("0, [N/A], 4, [Not Supported], 16, 16, [N/A], 450.00\n")
    assert (unknown.gen, unknown.gen_card, unknown.power_limit_w) == (None, None, None)


def test_idle_x16_cards_pass_and_their_link_and_power_are_reported():
    checks = gpu_checks(
        MIXTRAL, "query-2x4090.csv", "topo-p2p-2x4090.txt", link="link-2x4090-idle.csv"
    )
    pcie, power = checks["pcie"], checks["power limit"]
    assert pcie.status == "pass"  # Gen1 now: an idle card lowers its link, nvidia-smi says so
    assert "0: Gen1 x16 (max Gen4 x16); 1: Gen1 x16 (max Gen4 x16)" in pcie.detail
    assert power.status == "pass" and power.detail == "0: 450 W; 1: 450 W"


def test_a_card_in_a_x8_slot_is_warned_about_the_all_reduce_bandwidth():
    checks = gpu_checks(
        MIXTRAL, "query-2x4090.csv", "topo-p2p-2x4090.txt", link="link-2x4090-x8.csv"
    )
    pcie = checks["pcie"]
    assert pcie.status == "warn"
    assert "GPU 1 runs x8 (its slot's width)" in pcie.detail
    why = "a x8 slot halves the tensor-parallel all-reduce bandwidth: PCIe carries it, 4090s"
    assert why + " have no P2P" in pcie.detail
    assert "x16 slots" in pcie.fix


def test_a_gen3_slot_and_unequal_power_limits_are_warned():
    checks = gpu_checks(
        MIXTRAL, "query-2x4090.csv", "topo-p2p-2x4090.txt", link="link-2x4090-gen3-slot-300w.csv"
    )
    assert checks["pcie"].status == "warn"
    assert "GPU 1's slot stops at Gen3 (the card: Gen4)" in checks["pcie"].detail
    assert "a Gen3 slot halves the tensor-parallel all-reduce bandwidth" in checks["pcie"].detail
    power = checks["power limit"]
    assert power.status == "warn" and "1: 300 W (default 450 W)" in power.detail
    assert "pace of the slower card" in power.detail


def test_an_unreadable_link_query_is_a_warning_not_a_crash():
    checks = gpu_checks(MIXTRAL, "query-2x4090.csv", "topo-p2p-2x4090.txt")
    assert checks["pcie"].status == "warn" and "nvidia-smi -q -d PCIE" in checks["pcie"].fix


def test_the_doctor_checks_every_builtin_gpu_profile_with_sglangs_parser():
    for name in ("mixtral-awq-2x4090", "mixtral-awq-2x4090-fp8kv"):
        check = Doctor(get_profile(name), runner=replay(None)).profile_args()
        assert check.status == "pass", check
        assert "SGLang accepts the argv" in check.detail
        assert "max_running=128 decode graphs: 35 sizes up to 128" in check.detail
    assert "kv=fp8_e5m2" in check.detail


def test_the_doctor_warns_when_running_batches_outgrow_the_decode_graphs():
    profile = MIXTRAL.model_copy(update={"cuda_graph_max_bs_decode": 48})
    check = Doctor(profile, runner=replay(None)).profile_args()
    assert check.status == "warn"
    assert "batches of 49-128 requests decode without CUDA graphs" in check.detail


def test_a_port_in_use_is_reported(tmp_path):
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        check = Doctor(CPU, runner=replay(None)).port("gateway port", "127.0.0.1", port)
    assert check.status == "warn" and f"127.0.0.1:{port} is in use" in check.detail


def test_doctor_on_a_machine_without_nvidia_smi_passes_the_cpu_profile_and_fails_a_gpu_one(
    monkeypatch,
):
    """The real command and every other check of this machine; only nvidia-smi is hidden, so
    the answer is the same on a GPU box."""
    which = shutil.which
    monkeypatch.setattr(
        shutil,
        "which",
        lambda name, *a, **k: None if name == "nvidia-smi" else which(name, *a, **k),
    )
    cpu = runner.invoke(app, ["doctor", "--profile", "cpu-small"])
    assert re.search(r"gpus\W+pass\W+no GPU \(nvidia-smi not found\)", cpu.output), cpu.output
    assert "runs on the CPU" in cpu.output
    assert "Traceback" not in cpu.output
    mixtral = runner.invoke(app, ["doctor", "--profile", "mixtral-awq-2x4090"])
    assert mixtral.exit_code == 1, mixtral.output  # no GPU: a failure, with its fix
    assert re.search(r"gpus\W+fail\W+no GPU \(nvidia-smi not found\)", mixtral.output)
    assert "install the driver" in mixtral.output
    assert "Traceback" not in mixtral.output


def test_the_model_budget_uses_the_memory_of_the_gpus_found(tmp_path):
    import json

    folder = tmp_path / "m"
    folder.mkdir()
    config = {
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "hidden_size": 4096,
        "quantization_config": {"quant_method": "awq", "bits": 4, "version": "gemm"},
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text("{}")
    with open(folder / "model.safetensors", "wb") as weights:
        weights.truncate(24_700_000_000)
    profile = MIXTRAL.model_copy(update={"model_path": str(folder)})
    doctor = Doctor(profile, runner=replay("query-2x4090.csv", "topo-p2p-2x4090.txt"), env={})
    doctor.gpus()
    memory = {c.name: c for c in doctor.model()}["memory"]
    assert memory.status == "pass" and "2×24.0 GiB" in memory.detail
