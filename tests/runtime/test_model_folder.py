"""`forkpoint model prepare`: a model folder is checked offline — files, AWQ, memory budget."""

import json

import pytest
from typer.testing import CliRunner

from forkpoint.cli.main import app
from forkpoint.runtime.model_folder import GIB, MemoryBudget, check_source, resolve_source
from forkpoint.runtime.profiles import get_profile, load_profile

runner = CliRunner()
MIXTRAL = get_profile("mixtral-awq-2x4090")
MIXTRAL_CONFIG = {
    "architectures": ["MixtralForCausalLM"],
    "model_type": "mixtral",
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_hidden_layers": 32,
    "quantization_config": {
        "quant_method": "awq",
        "bits": 4,
        "group_size": 128,
        "version": "gemm",
        "zero_point": True,
    },
}
SHARD_BYTES = 8_233_000_000  # three shards ≈ the public 24.7 GB checkpoint (sparse files here)


def make_mixtral_folder(folder, *, shards=3, config=MIXTRAL_CONFIG, shard_bytes=SHARD_BYTES):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text("{}")
    names = [f"model-{i:05d}-of-00003.safetensors" for i in range(1, 4)]
    index = {"weight_map": {f"layer.{i}": name for i, name in enumerate(names)}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    for name in names[:shards]:
        with open(folder / name, "wb") as shard:
            shard.truncate(shard_bytes)
    return folder


def by_name(checks):
    return {check.name: check for check in checks}


def test_a_complete_awq_folder_passes_and_the_kv_pool_is_sized_from_its_config(tmp_path):
    checks = by_name(check_source(str(make_mixtral_folder(tmp_path / "m")), MIXTRAL))
    assert [c.status for c in checks.values() if c.status == "fail"] == []
    assert checks["quantization"].detail == "AWQ 4-bit, group 128, gemm"
    assert "3 safetensors shard(s), 23.0 GiB" in checks["weights"].detail
    assert "128 KiB/token" in checks["memory"].detail  # 2 × 32 layers × 8 heads × 128 × fp16
    # 128 requests of 3,000 tokens do not all fit in the pool at once: a warning with numbers.
    assert checks["concurrency"].status == "warn"
    # 2 cards × 24,564 MiB × mem_fraction_static − 23.0 GiB of weights, at 128 KiB per token
    pool = int(2 * 24564 * 2**20 * MIXTRAL.mem_fraction_static - 3 * SHARD_BYTES) // (128 * 1024)
    assert f"about {pool // 3000} fit at once" in checks["concurrency"].detail


def test_an_fp8_kv_cache_halves_the_bytes_per_token(tmp_path):
    fp8 = get_profile("mixtral-awq-2x4090-fp8kv")
    assert fp8.kv_cache_dtype == "fp8_e5m2" and fp8.extra_args == MIXTRAL.extra_args
    checks = by_name(check_source(str(make_mixtral_folder(tmp_path / "m")), fp8))
    assert "64 KiB/token" in checks["memory"].detail


def test_the_memory_budget_is_weights_plus_kv_within_mem_fraction():
    budget = MemoryBudget(2, 24 * GIB, 0.5, weights_bytes=8 * GIB, kv_bytes_per_token=1024)
    assert budget.usable_bytes == 24 * GIB
    assert budget.kv_pool_tokens == 16 * GIB // 1024


def test_a_missing_shard_is_named(tmp_path):
    checks = by_name(check_source(str(make_mixtral_folder(tmp_path / "m", shards=2)), MIXTRAL))
    assert checks["weights"].status == "fail"
    assert "1 of 3 shards missing: model-00003-of-00003.safetensors" in checks["weights"].detail
    assert "memory" not in checks  # no budget from a partial download


def test_a_non_awq_checkpoint_fails_the_awq_profile(tmp_path):
    config = {**MIXTRAL_CONFIG, "quantization_config": {"quant_method": "gptq", "bits": 4}}
    checks = by_name(check_source(str(make_mixtral_folder(tmp_path / "m", config=config)), MIXTRAL))
    assert checks["quantization"].status == "fail"
    assert "config.json says: gptq" in checks["quantization"].detail


def test_a_folder_without_tokenizer_or_config_says_what_is_missing(tmp_path):
    folder = make_mixtral_folder(tmp_path / "m")
    (folder / "tokenizer.json").unlink()
    assert by_name(check_source(str(folder), MIXTRAL))["tokenizer"].status == "fail"
    (folder / "config.json").unlink()
    checks = by_name(check_source(str(folder), MIXTRAL))
    assert checks["config"].status == "fail" and "no config.json" in checks["config"].detail


def test_weights_larger_than_one_card_fail_on_one_gpu(tmp_path):
    folder = make_mixtral_folder(tmp_path / "m")
    checks = by_name(check_source(str(folder), MIXTRAL, gpus=1))
    assert checks["memory"].status == "fail"
    assert "do not fit" in checks["memory"].detail


def test_a_hub_id_is_found_in_the_local_hf_cache_and_an_unknown_one_says_how_to_download(
    tmp_path, monkeypatch
):
    hub = tmp_path / "hub"
    repo = hub / "models--TheBloke--Mixtral-8x7B-Instruct-v0.1-AWQ"
    make_mixtral_folder(repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123\n")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    snapshot = resolve_source("TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ")
    assert snapshot == repo / "snapshots" / "abc123"
    [missing] = check_source("mistralai/Other-Model", MIXTRAL)
    assert missing.status == "fail"
    assert "huggingface-cli download mistralai/Other-Model" in missing.fix


def test_prepare_prints_the_table_and_writes_a_profile_that_loads(tmp_path):
    folder = make_mixtral_folder(tmp_path / "m")
    toml = tmp_path / "etc" / "profile.toml"
    result = runner.invoke(
        app, ["model", "prepare", "--source", str(folder), "--write-profile", str(toml)]
    )
    assert result.exit_code == 0, result.output
    assert "quantization" in result.output and "AWQ 4-bit" in result.output
    profile = load_profile(toml)
    assert profile.model_path == str(folder.resolve())
    assert profile.tp == 2 and profile.quantization == "awq_marlin"


def test_prepare_exits_1_on_a_broken_folder_and_writes_no_profile(tmp_path):
    folder = make_mixtral_folder(tmp_path / "m", shards=1)
    toml = tmp_path / "profile.toml"
    result = runner.invoke(
        app, ["model", "prepare", "--source", str(folder), "--write-profile", str(toml)]
    )
    assert result.exit_code == 1
    assert "2 of 3 shards missing" in result.output
    assert not toml.exists()


@pytest.mark.parametrize("source", ["/no/such/folder", "not-a-hub-id"])
def test_prepare_on_a_missing_source_fails_cleanly(source):
    result = runner.invoke(app, ["model", "prepare", "--source", source])
    assert result.exit_code == 1
    assert "model folder" in result.output and "Traceback" not in result.output
