"""Chat templates render exactly what the models were trained on."""

import re

import pytest
import sentencepiece
from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, UserMessage
from mistral_common.protocol.instruct.request import ChatCompletionRequest
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

from forkpoint.errors import TaskError
from forkpoint.programs.templates import get_chat_format

CONVERSATIONS = {
    "no-shots": ("Extract the invoice.\nBe exact.", [], "Document:\nACME Ltd — invoice 7, café"),
    "one-shot": (
        "Extract the contact.",
        [("Document:\nJana Novak, Brightwater", '{"name":"Jana Novak","org":"Brightwater"}')],
        "Document:\nOmar Haddad\nCFO, Dunes Capital",
    ),
    "three-shots-json-and-unicode": (
        "Fields:\n- total (number)\n- currency (text)",
        [
            ("Document:\nTotal: 12,50 €", '{"total":12.5,"currency":"EUR"}'),
            ("Document:\n合計 ¥3,000\n東京", '{"total":3000,"currency":"JPY"}'),
            ("Document:\nno total 🎉", '{"total":null,"currency":null}'),
        ],
        "Document:\n\n Invoice #A-17\n\tTotal due: $1,234.00",
    ),
}
# HF's fast Llama tokenizer merges a run of spaces into "▁▁" pieces where sentencepiece (and so
# mistral_common) emits one "▁" per space. That is the tokenizer's behaviour on document text,
# whatever the template; the template itself is proven exact on it with sentencepiece below.
SPACE_RUNS = (
    "Align  the   columns:",
    [("Document:\nQty    Price\n2      4.00", '{"rows": [[2, 4.0]]}')],
    "Document:\n  indented  text",
)


def _mistral_ids(system, shots, user):
    messages = [SystemMessage(content=system)]
    for question, answer in shots:
        messages += [UserMessage(content=question), AssistantMessage(content=answer)]
    messages.append(UserMessage(content=user))
    request = ChatCompletionRequest(messages=messages)
    return MistralTokenizer.v1().encode_chat_completion(request).tokens


@pytest.mark.parametrize("conversation", CONVERSATIONS.values(), ids=CONVERSATIONS.keys())
def test_mixtral_prompt_tokenizes_to_exactly_the_ids_of_mistral_common(
    conversation, mixtral_tokenizer
):
    system, shots, user = conversation
    text = get_chat_format("mixtral-v1").render(system, shots, user)
    assert mixtral_tokenizer.encode(text) == _mistral_ids(system, shots, user)


def _sentencepiece_ids(text: str, model_file) -> list[int]:
    """mistral_common's algorithm on our text: BOS, then each segment between EOS markers
    encoded by its own sentencepiece call."""
    processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    ids = [processor.bos_id()]
    for segment in re.split("(</s>)", text):
        if segment == "</s>":
            ids.append(processor.eos_id())
        elif segment:
            ids += processor.encode(segment)
    return ids


@pytest.mark.parametrize(
    "conversation", [*CONVERSATIONS.values(), SPACE_RUNS], ids=[*CONVERSATIONS, "space-runs"]
)
def test_mixtral_template_matches_mistral_common_under_its_own_sentencepiece_encoding(
    conversation, mistral_v1_model_file
):
    system, shots, user = conversation
    text = get_chat_format("mixtral-v1").render(system, shots, user)
    assert _sentencepiece_ids(text, mistral_v1_model_file) == _mistral_ids(system, shots, user)


def test_mixtral_prompt_has_no_textual_bos_and_ends_at_the_instruction_close():
    text = get_chat_format("mixtral-v1").render("S", [("U", "A")], "D")
    assert text == "[INST] S\n\nU [/INST] A</s>[INST] D [/INST]"


@pytest.mark.parametrize("conversation", CONVERSATIONS.values(), ids=CONVERSATIONS.keys())
def test_chatml_prompt_equals_smollm2s_own_chat_template(conversation, smollm2_tokenizer):
    system, shots, user = conversation
    messages = [{"role": "system", "content": system}]
    for question, answer in shots:
        messages += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    messages.append({"role": "user", "content": user})
    expected = smollm2_tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert get_chat_format("chatml").render(system, shots, user) == expected


def test_an_unknown_chat_format_names_the_known_ones():
    with pytest.raises(TaskError, match="known: chatml, mixtral-v1"):
        get_chat_format("llama-9")
