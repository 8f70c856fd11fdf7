"""The production profile's model family end to end on the CPU: a tiny random-weight Mixtral
(MixtralForCausalLM, 2 layers, 4 experts, top-2) with the real Mixtral v1 tokenizer, served by
SGLang with the Mixtral chat template. Its text is nonsense; the constraint must still hold, and
the fork-point prefix must still be token-stable under the real tokenizer."""

from typing import Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from forkpoint.programs.batch import BatchDriver, BatchOptions
from forkpoint.programs.documents.document import Document
from forkpoint.programs.prompt import task_prompt
from forkpoint.programs.target import Target
from forkpoint.programs.tasks.task import Example, ExtractionTask

pytestmark = pytest.mark.slow


class Triage(BaseModel):
    """Every field bounded: random weights must still be able to finish the object."""

    kind: Literal["invoice", "letter", "other"]
    title: str = Field(max_length=24)
    urgent: bool


TASK = ExtractionTask(
    name="triage",
    description="What kind of document this is.",
    instructions="Classify the document and give it a short title.",
    output_model=Triage,
    examples=(
        Example(
            "Invoice 7 from Alder Ltd, due now.",
            Triage(kind="invoice", title="Alder invoice 7", urgent=True),
        ),
    ),
    max_output_tokens=96,
)


def test_sglang_loads_it_as_mixtral_on_the_cpu(tiny_mixtral):
    log = tiny_mixtral.log_path.read_text(errors="replace")
    assert "type=MixtralForCausalLM" in log  # SGLang's Mixtral model class: MoE layers, top-2


def test_the_mixtral_prefix_is_a_token_prefix_of_every_prompt(tiny_mixtral):
    prompt = task_prompt(TASK, tiny_mixtral.profile.chat_format)
    texts = [prompt.prefix, prompt.full("Dear Ann,  two spaces here.\n\nLetter 2.")]
    prefix, full = httpx.post(
        f"{tiny_mixtral.url}/tokenize", timeout=30, json={"prompt": texts}
    ).json()["tokens"]
    assert full[: len(prefix)] == prefix and len(full) > len(prefix)
    assert full[:4] == [1, 733, 16289, 28793]  # <s> [INST], as mistral_common encodes it


def test_nonsense_text_still_satisfies_the_schema_and_reuses_the_prefix(tiny_mixtral):
    target = Target(tiny_mixtral.url, tiny_mixtral.profile.chat_format)
    driver = BatchDriver(target, TASK, BatchOptions(concurrency=4))
    documents = [
        Document(f"{i}.txt", text=f"Letter {i} from Birch Ltd about the order.") for i in range(4)
    ]
    results = list(driver.run(documents))
    assert [r.status for r in results] == ["ok"] * 4, [r.error for r in results]
    assert all(isinstance(r.data, Triage) for r in results)
    assert all(r.usage.cached_tokens >= driver.prefix_tokens > 0 for r in results)
