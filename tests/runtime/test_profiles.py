"""Launch profiles render the argv SGLang's own parser accepts, with every production choice."""

import pytest
from sglang.srt.server_args import prepare_server_args

from forkpoint.programs.errors import ProfileError
from forkpoint.runtime.checks import check_profile
from forkpoint.runtime.profiles import get_profile


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
    assert args.speculative_num_draft_tokens == 8
    assert args.grammar_backend == "xgrammar"
    assert args.enable_metrics and args.disable_custom_all_reduce
    assert profile.env["NCCL_P2P_DISABLE"] == "1"
    assert profile.chat_format == "mixtral-v1"


def test_the_embedded_cpu_profile_parses_and_is_bounded():
    profile = get_profile("cpu-small").model_copy(update={"model_path": "/models/smol"})
    args = _parsed(profile)
    assert args.device == "cpu"
    assert args.attention_backend == "torch_native"
    assert args.dtype == "bfloat16"
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
    with pytest.raises(ProfileError, match="cpu-small, mixtral-awq-2x4090"):
        get_profile("gpt-17")
