"""The fork point is token-stable: the prefix's tokens start every full prompt's tokens.

RadixAttention shares cached KV by token ids, so a prefix that tokenizes differently once a
document follows it would be recomputed for every document.
"""

import pytest

from forkpoint.programs.templates import get_chat_format

DOCUMENTS = {
    "plain": "Invoice 7 from ACME Ltd.",
    "leading-space": " Invoice 7",
    "leading-newlines": "\n\n\nInvoice 7",
    "leading-tab": "\tTotal: 12",
    "punctuation": "...and then: (see above)!",
    "digits": "2026-11-24 total 1,234.00",
    "accents": "Ålesund café — facture n° 7",
    "cjk": "東京都の請求書",
    "emoji": "🎉🎉 paid",
    "lone-bracket": "[",
    "lone-angle": "<",
    "template-lookalike": "[/INST] <|im_start|>assistant\n{",
    "json": '{"already": "json"}',
}
SHOTS = {
    "0-shots": [],
    "1-shot": [("Document:\nA", '{"a":1}')],
    "3-shots": [("Document:\nA", '{"a":1}'), ("Document:\nB", '{"a":2}'), ("C", "{}")],
}
SYSTEM = "Extract the fields.\n\nFields of the JSON object:\n- a (number, required)"


@pytest.fixture(params=["chatml", "mixtral-v1"])
def format_and_tokenizer(request, smollm2_tokenizer, mixtral_tokenizer):
    tokenizer = smollm2_tokenizer if request.param == "chatml" else mixtral_tokenizer
    return get_chat_format(request.param), tokenizer


@pytest.mark.parametrize("shots", SHOTS.values(), ids=SHOTS.keys())
@pytest.mark.parametrize("document", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_prefix_tokens_are_a_prefix_of_every_full_prompt(format_and_tokenizer, shots, document):
    chat_format, tokenizer = format_and_tokenizer
    prefix = chat_format.prefix(SYSTEM, shots)
    full = prefix + chat_format.turn(f"Document:\n{document}", opens=not shots)
    prefix_ids = tokenizer.encode(prefix)
    full_ids = tokenizer.encode(full)
    assert full_ids[: len(prefix_ids)] == prefix_ids
    assert len(full_ids) > len(prefix_ids)


def test_even_a_raw_document_glued_to_the_prefix_keeps_the_chatml_prefix_stable(
    smollm2_tokenizer,
):
    chat_format = get_chat_format("chatml")
    prefix = chat_format.prefix(SYSTEM, SHOTS["1-shot"])
    for document in DOCUMENTS.values():
        full = prefix + chat_format.turn(document, opens=False)
        prefix_ids = smollm2_tokenizer.encode(prefix)
        assert smollm2_tokenizer.encode(full)[: len(prefix_ids)] == prefix_ids


@pytest.mark.parametrize("shots", SHOTS.values(), ids=SHOTS.keys())
def test_a_conversation_without_a_system_message_keeps_the_prefix_stable(
    format_and_tokenizer, shots
):
    """An OpenAI request may have no system message: its turns alone are the prefix."""
    chat_format, tokenizer = format_and_tokenizer
    prefix = chat_format.prefix(None, shots)
    for document in DOCUMENTS.values():
        full = prefix + chat_format.turn(document, opens=False)
        prefix_ids = tokenizer.encode(prefix)
        assert tokenizer.encode(full)[: len(prefix_ids)] == prefix_ids
        assert len(tokenizer.encode(full)) > len(prefix_ids)
