"""A runtime someone else started is asked which model it serves, and a chat format that does
not fit that model is refused before any document runs. Against real SGLang servers."""

import time

import pytest

from forkpoint.errors import ProfileError, RuntimeUnavailable
from forkpoint.programs.batch import BatchDriver
from forkpoint.programs.target import Target
from forkpoint.programs.tasks.registry import get_task
from forkpoint.runtime.launcher import free_port
from forkpoint.runtime.served_model import (
    ServedModel,
    chat_format_for,
    check_chat_format,
    check_served_format,
    served_model,
)


def test_the_cpu_small_runtime_is_recognised_as_smollm2_in_chatml(sglang_server):
    model = served_model(sglang_server.url)
    assert "SmolLM2" in model.model_path
    assert model.architectures == ("LlamaForCausalLM",)  # the name, not the shape, decides
    assert chat_format_for(model) == "chatml"
    assert check_chat_format(sglang_server.url, None) == "chatml"
    assert check_chat_format(sglang_server.url, "chatml") == "chatml"


def test_mixtral_prompts_for_the_smollm2_runtime_are_refused_with_the_reason(sglang_server):
    with pytest.raises(ProfileError) as refused:
        check_chat_format(sglang_server.url, "mixtral-v1")
    message = str(refused.value)
    assert f"the runtime at {sglang_server.url} serves" in message
    assert "(SmolLM2), whose prompts use chatml, not mixtral-v1" in message
    assert "--chat-format chatml" in message


def test_a_driver_with_the_wrong_format_is_refused_before_any_document(sglang_server):
    target = Target(sglang_server.url, "mixtral-v1")
    with pytest.raises(ProfileError, match="whose prompts use chatml, not mixtral-v1"):
        BatchDriver(target, get_task("contacts"))


def test_an_unknown_model_takes_an_explicit_format_but_not_none():
    model = ServedModel(
        url="http://x", model_path="/models/llama-3-8b", architectures=("LlamaForCausalLM",)
    )
    assert chat_format_for(model) is None
    assert check_served_format(model, "chatml") == "chatml"
    with pytest.raises(ProfileError, match="llama-3-8b.*pass --chat-format"):
        check_served_format(model, None)


def test_nothing_listening_is_runtime_unavailable_at_once():
    url = f"http://127.0.0.1:{free_port()}"
    started = time.perf_counter()
    with pytest.raises(RuntimeUnavailable, match=f"no SGLang server answers at {url}"):
        served_model(url, timeout=2)
    assert time.perf_counter() - started < 2


@pytest.mark.slow
def test_the_tiny_mixtral_runtime_is_recognised_and_chatml_refused(tiny_mixtral):
    model = served_model(tiny_mixtral.url)
    assert model.architectures == ("MixtralForCausalLM",)
    assert check_chat_format(tiny_mixtral.url, None) == "mixtral-v1"
    refusal = r"\(Mixtral\), whose prompts use mixtral-v1, not chatml"
    with pytest.raises(ProfileError, match=refusal):
        check_chat_format(tiny_mixtral.url, "chatml")
    with pytest.raises(ProfileError, match="not chatml"):
        BatchDriver(Target(tiny_mixtral.url, "chatml"), get_task("contacts"))
