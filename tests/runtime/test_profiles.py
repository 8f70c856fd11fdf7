"""Launch profiles render the argv SGLang's own parser accepts, with every production choice."""

import argparse
from typing import get_args

import pytest
from pydantic import ValidationError
from sglang.srt.server_args import ServerArgs, prepare_server_args
from typer.testing import CliRunner

from forkpoint.cli.main import app
from forkpoint.errors import ProfileError
from forkpoint.runtime.profiles import (
    BUILTIN_PROFILES,
    KvCacheDtype,
    LaunchProfile,
    Speculation,
    cpu_dtype,
    get_profile,
    load_profile,
    save_profile,
)
from forkpoint.runtime.sglang_args import check_profile, decode_graph_sizes


def _parsed(profile):
    return prepare_server_args(profile.argv()[3:])


def test_the_mixtral_profile_parses_with_sglang_as_tp2_awq_marlin_ngram_lpm():
    profile = get_profile("mixtral-awq-2x4090")
    args = _parsed(profile)
    assert args.tp_size == 2
    assert args.quantization == "awq_marlin"
    assert args.speculative_algorithm == "NGRAM"
    assert args.schedule_policy == "lpm"
    assert args.max_running_requests == 128  # explicit, or NGRAM would cap it at 48
    assert args.speculative_num_draft_tokens == 4
    assert args.constrained_json_disable_any_whitespace
    assert args.grammar_backend == "xgrammar"
    assert args.enable_metrics and args.disable_custom_all_reduce
    assert profile.env["NCCL_P2P_DISABLE"] == "1"
    assert profile.chat_format == "mixtral-v1"


def test_the_embedded_cpu_profile_parses_and_is_bounded():
    profile = get_profile("cpu-small").model_copy(update={"model_path": "/models/smol"})
    args = _parsed(profile)
    assert args.device == "cpu"
    assert args.attention_backend == "torch_native"
    assert args.dtype == cpu_dtype()
    assert args.max_total_tokens == 32768
    assert args.sleep_on_idle and args.disable_cuda_graph
    assert profile.env == {"SGLANG_USE_CPU_ENGINE": "1"}


def test_check_accepts_a_profile_whose_model_is_resolved_at_launch():
    assert check_profile(get_profile("cpu-small")).device == "cpu"


def test_a_toml_profile_can_start_from_a_builtin_and_override_fields(tmp_path):
    path = tmp_path / "my-mixtral.toml"
    path.write_text(
        'base = "mixtral-awq-2x4090"\nmodel_path = "/srv/models/mixtral-awq"\nport = 31000\n'
    )
    profile = get_profile(str(path))
    assert profile.name == "my-mixtral"
    assert profile.model_path == "/srv/models/mixtral-awq"
    assert profile.tp == 2 and profile.port == 31000
    assert _parsed(profile).model_path == "/srv/models/mixtral-awq"


def test_a_standalone_toml_profile_with_speculation(tmp_path):
    path = tmp_path / "qwen.toml"
    path.write_text(
        'model_path = "/m/qwen"\nchat_format = "chatml"\ntp = 1\n'
        '[speculation]\nalgorithm = "NGRAM"\nnum_draft_tokens = 6\n'
    )
    args = _parsed(get_profile(str(path)))
    assert args.speculative_algorithm == "NGRAM"
    assert args.speculative_num_draft_tokens == 6


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("tp = 0\n", "field 'tp'"),
        ('model_path = "/m"\nflavour = "x"\n', "field 'flavour'"),
        ("[speculation]\nalgorithm = 'EAGLE'\n", "field 'speculation.algorithm'"),
        ('base = "nope"\n', "unknown base 'nope'"),
        ("tp = \n", "not valid TOML"),
    ],
    ids=["bad-value", "unknown-field", "bad-nested", "unknown-base", "broken-toml"],
)
def test_a_bad_toml_profile_is_an_error_naming_the_field(tmp_path, toml, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ProfileError, match=message):
        get_profile(str(path))


def test_an_unknown_profile_name_lists_the_builtins():
    with pytest.raises(
        ProfileError, match="cpu-small, mixtral-awq-2x4090, mixtral-awq-2x4090-fp8kv"
    ):
        get_profile("gpt-17")


@pytest.mark.parametrize("name", list(BUILTIN_PROFILES))
def test_every_builtin_profile_passes_sglangs_parser(name):
    parsed = check_profile(get_profile(name))
    assert parsed.kv_cache_dtype == get_profile(name).kv_cache_dtype


def test_the_mixtral_decode_graphs_cover_every_running_batch():
    profile = get_profile("mixtral-awq-2x4090")
    argv = profile.argv()
    graphs = int(argv[argv.index("--cuda-graph-max-bs-decode") + 1])
    running = int(argv[argv.index("--max-running-requests") + 1])
    assert graphs >= running == 128
    sizes = decode_graph_sizes(check_profile(profile))  # SGLang's own list for this argv
    assert running in sizes and max(sizes) == graphs
    assert profile.client_concurrency > running  # the scheduler always has a queue


def test_the_fp8_kv_profile_is_the_mixtral_profile_with_an_e5m2_kv_cache():
    base, fp8 = get_profile("mixtral-awq-2x4090"), get_profile("mixtral-awq-2x4090-fp8kv")
    assert fp8.model_dump(exclude={"name", "kv_cache_dtype"}) == base.model_dump(
        exclude={"name", "kv_cache_dtype"}
    )
    assert (base.kv_cache_dtype, fp8.kv_cache_dtype) == ("auto", "fp8_e5m2")
    assert LaunchProfile.model_validate(fp8.model_dump()) == fp8  # model_copy skipped validation
    argv = fp8.argv()
    assert argv[argv.index("--kv-cache-dtype") + 1] == "fp8_e5m2"


def test_the_kv_cache_dtypes_are_the_ones_sglangs_parser_accepts():
    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    [action] = [a for a in parser._actions if "--kv-cache-dtype" in a.option_strings]
    assert set(get_args(KvCacheDtype)) == set(action.choices)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kv_cache_dtype": "fp16"}, "kv_cache_dtype"),
        ({"cuda_graph_max_bs_decode": 0}, "cuda_graph_max_bs_decode"),
    ],
)
def test_new_fields_are_validated_at_construction_naming_the_field(fields, field):
    with pytest.raises(ValidationError, match=field):
        LaunchProfile(name="x", **fields)


def test_the_job_corpus_cannot_take_every_draft_slot(tmp_path):
    with pytest.raises(ValidationError, match="external_sam_budget"):
        Speculation(algorithm="NGRAM", num_draft_tokens=4, external_sam_budget=4)
    path = tmp_path / "greedy.toml"
    path.write_text('base = "mixtral-awq-2x4090"\n[speculation]\nexternal_sam_budget = 8\n')
    with pytest.raises(ProfileError, match="field 'speculation'.*external_sam_budget"):
        get_profile(str(path))


@pytest.mark.parametrize("name", list(BUILTIN_PROFILES))
def test_save_profile_writes_toml_that_loads_back_equal(tmp_path, name):
    profile = get_profile(name)
    path = tmp_path / "saved.toml"
    save_profile(profile, path)
    assert load_profile(path) == profile


def test_save_profile_round_trips_overrides_and_leaves_defaults_out(tmp_path):
    profile = get_profile("mixtral-awq-2x4090").model_copy(
        update={
            "name": "tuned",
            "model_path": '/srv/models/mixtral "awq"',
            "port": 31000,
            "max_running_requests": None,
            "extra_args": ("--log-level", "debug"),
            "env": {"NCCL_P2P_DISABLE": "1", "A.B": "tab\there"},
            "speculation": Speculation(algorithm="NGRAM", num_draft_tokens=6),
        }
    )
    path = tmp_path / "t.toml"
    save_profile(profile, path)
    text = path.read_text()
    assert load_profile(path) == profile
    assert "max_running_requests" not in text and "host =" not in text  # None and default
    assert 'extra_args = ["--log-level", "debug"]' in text
    assert '[speculation]\nalgorithm = "NGRAM"\nnum_draft_tokens = 6\n' in text
    assert check_profile(load_profile(path)).port == 31000


def test_runtime_check_all_checks_every_builtin_profile():
    result = CliRunner().invoke(app, ["runtime", "check", "--all"])
    assert result.exit_code == 0, result.output
    for name in BUILTIN_PROFILES:
        assert f"ok {name}:" in result.output


def test_the_embedded_profile_computes_in_bfloat16_only_where_the_cpu_does_it_natively():
    amx = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
    avx512 = "flags\t\t: fpu avx2 avx512f avx512_bf16\n"
    amd = "model name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 fma\n"
    assert cpu_dtype(amx) == cpu_dtype(avx512) == "bfloat16"
    assert cpu_dtype(amd) == "float32"
    assert cpu_dtype("") == "float32"
    assert get_profile("cpu-small").dtype == cpu_dtype()  # this machine's
