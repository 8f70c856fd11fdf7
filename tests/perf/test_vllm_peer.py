"""The vLLM peer: its command line, its availability check, and its OpenAI client run for real.

vLLM needs a GPU and is not installed here, so the client is run against a real SGLang server's
own /v1/completions (dialect "sglang"); only the request's schema field differs for vLLM.
"""

import json
import sys

import httpx
import pytest

from forkpoint.perf.bench import bench
from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.perf.peers.vllm_server import (
    VllmServer,
    cached_tokens,
    completion_body,
    run_openai_peer,
    usage_from,
    vllm_available,
)
from forkpoint.programs.prompt import task_prompt
from forkpoint.programs.results.record import Usage
from forkpoint.programs.tasks.registry import get_task


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_the_command_line_carries_every_setting_and_an_ngram_config_that_parses():
    server = VllmServer(
        "/opt/vllm/bin/python",
        "/models/mixtral-awq",
        tp=2,
        max_num_seqs=128,
        gpu_memory_utilization=0.88,
        kv_cache_dtype="fp8",
        quantization="awq_marlin",
        ngram_drafts=4,
    )
    server.port = 30123
    argv = server.argv()
    assert argv[:3] == ["/opt/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert flag(argv, "--model") == "/models/mixtral-awq"
    assert flag(argv, "--host") == "127.0.0.1" and flag(argv, "--port") == "30123"
    assert flag(argv, "--tensor-parallel-size") == "2"
    assert flag(argv, "--max-num-seqs") == "128"
    assert flag(argv, "--gpu-memory-utilization") == "0.88"
    assert flag(argv, "--quantization") == "awq_marlin"
    assert flag(argv, "--kv-cache-dtype") == "fp8"
    assert "--enable-prefix-caching" in argv and "--enable-prompt-tokens-details" in argv
    assert json.loads(flag(argv, "--speculative-config")) == {
        "method": "ngram",
        "num_speculative_tokens": 4,
        "prompt_lookup_max": 4,
        "prompt_lookup_min": 2,
    }


def test_no_drafts_no_quantization_and_no_kv_dtype_leave_their_flags_out():
    argv = VllmServer(sys.executable, "m", ngram_drafts=0).argv()
    assert "--speculative-config" not in argv
    assert "--quantization" not in argv and "--kv-cache-dtype" not in argv


def test_settings_out_of_range_are_refused():
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        VllmServer(sys.executable, "m", gpu_memory_utilization=1.5)
    with pytest.raises(ValueError, match="ngram_drafts"):
        VllmServer(sys.executable, "m", ngram_drafts=-1)


def shadow_vllm(monkeypatch, folder, source: str) -> None:
    """A `vllm` package that PYTHONPATH puts ahead of any installed one, whatever is installed."""
    (folder / "vllm").mkdir()
    (folder / "vllm" / "__init__.py").write_text(source)
    monkeypatch.setenv("PYTHONPATH", str(folder))


def test_an_interpreter_whose_vllm_fails_to_import_is_a_reason_with_its_error(
    monkeypatch, tmp_path
):
    shadow_vllm(monkeypatch, tmp_path, "raise ImportError('libcudart.so.12: cannot open')\n")
    reason = vllm_available(sys.executable)  # a real `python -c "import vllm"`
    error = "ImportError: libcudart.so.12: cannot open"
    assert reason == f"vllm cannot be imported by {sys.executable}: {error}"


def test_an_interpreter_that_imports_vllm_has_it_available(monkeypatch, tmp_path):
    shadow_vllm(monkeypatch, tmp_path, "")
    assert vllm_available(sys.executable) is None


def test_an_interpreter_that_does_not_exist_is_a_reason_too(tmp_path):
    assert "vllm" in vllm_available(tmp_path / "no-python")


def test_the_peer_sends_the_text_forkpoints_own_path_sends_and_the_schema_in_each_dialect():
    task = get_task("invoices")
    prompt = task_prompt(task, "chatml")
    for _, text in generate(CorpusSpec(documents=2, min_tokens=80, max_tokens=120, seed=5)):
        vllm, sglang = (completion_body("m", prompt, task, text, d) for d in ("vllm", "sglang"))
        # BatchDriver hands program.run_extract the prefix and this turn; the program sends both
        assert vllm["prompt"] == sglang["prompt"] == prompt.prefix + prompt.reask(text, [])
        assert vllm["max_tokens"] == task.max_output_tokens and vllm["temperature"] == 0.0
        assert vllm["structured_outputs"] == {"json": task.constraint.schema}
        assert sglang["json_schema"] == task.constraint.schema_json


def test_cached_tokens_are_read_when_reported_and_zero_in_the_sums_when_not():
    reported = {
        "prompt_tokens": 900,
        "completion_tokens": 80,
        "prompt_tokens_details": {"cached_tokens": 848},
    }
    assert usage_from(reported).cached_tokens == 848
    counts = {"prompt_tokens": 900, "completion_tokens": 80}
    for absent in (counts, {**counts, "prompt_tokens_details": None}):
        assert cached_tokens(absent) is None  # not reported, not "none cached"
        assert usage_from(absent) == Usage(900, 0, 80)


@pytest.mark.slow
def test_the_openai_client_extracts_through_a_real_sglang_server_and_its_totals_add_up(
    sglang_server,
):
    url = sglang_server.url
    model = httpx.get(f"{url}/v1/models", timeout=30).json()["data"][0]["id"]
    task = get_task("invoices")
    prompt = task_prompt(task, sglang_server.profile.chat_format)
    documents = generate(CorpusSpec(documents=3, min_tokens=80, max_tokens=120, seed=5))
    outcome = run_openai_peer(url, model, prompt, task, documents, 3, 857, dialect="sglang")
    results, wall, prefix, timeline = outcome
    figures = bench.measure("vllm", *outcome)

    assert [r.name for r in results] == [name for name, _ in documents]
    assert not [r.error for r in results if r.status == "error"]
    assert all(r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0 for r in results)
    # the server's own count of forkpoint's text (what run_direct sends) is what the peer read
    counted = [
        httpx.post(
            f"{url}/generate",
            timeout=600,
            json={"text": prompt.full(text), "sampling_params": {"max_new_tokens": 0}},
        ).json()["meta_info"]["prompt_tokens"]
        for _, text in documents
    ]
    assert [r.usage.prompt_tokens for r in results] == counted
    assert timeline.points[-1][0] <= wall
    assert figures["documents"] == 3 and figures["prefix_tokens"] == prefix == 857
    assert figures["prompt_tokens"] == sum(r.usage.prompt_tokens for r in results)
    assert figures["cached_tokens"] == sum(r.usage.cached_tokens for r in results)
    assert figures["output_tokens"] == sum(r.usage.completion_tokens for r in results)
    assert figures["write_tokens_per_second"] == round(figures["output_tokens"] / wall, 1)
    assert figures["timeline"][-1][1:] == (figures["prompt_tokens"], figures["output_tokens"])
