"""Chat formats, each defined once: how a task's turns become the text SGLang tokenizes.

A format renders two parts: `prefix` (system text, if any, and few-shot turns: everything before
the fork point) and `turn` (one document's user turn plus the generation prompt). The fork point
sits on a token-stable boundary — right before a special token or a byte-fallback newline — so the
prefix's tokens are a prefix of every full prompt's tokens and RadixAttention can share them.

SGLang tokenizes /generate text with the model's HF tokenizer and its default special tokens:
Llama/Mistral tokenizers add BOS themselves, so no format writes a textual `<s>`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from forkpoint.errors import TaskError

Shot = tuple[str, str]  # (user text, assistant text)


class ChatFormat(ABC):
    """Renders a system text, few-shot turns and one user turn into prompt text."""

    name: str

    @abstractmethod
    def prefix(self, system: str | None, shots: Sequence[Shot]) -> str:
        """Everything before the fork point (`system` None: no system message)."""

    @abstractmethod
    def turn(self, user: str, *, opens: bool) -> str:
        """One user turn and the generation prompt. `opens`: the prefix left the turn open
        (a system text and no shots: the user text joins the system's turn, where a format
        has no system role)."""

    @abstractmethod
    def followup(self, answer: str, user: str) -> str:
        """After a turn: close the assistant's `answer`, add a user turn, prompt again."""

    def render(self, system: str | None, shots: Sequence[Shot], user: str) -> str:
        return self.prefix(system, shots) + self.turn(user, opens=not shots and system is not None)


class ChatML(ChatFormat):
    """ChatML, as SmolLM2-Instruct's own chat template writes it."""

    name = "chatml"

    def prefix(self, system: str | None, shots: Sequence[Shot]) -> str:
        text = "" if system is None else f"<|im_start|>system\n{system}<|im_end|>\n"
        for user, assistant in shots:
            text += f"<|im_start|>user\n{user}<|im_end|>\n"
            text += f"<|im_start|>assistant\n{assistant}<|im_end|>\n"
        return text  # fork point: the document turn starts with the special <|im_start|>

    def turn(self, user: str, *, opens: bool) -> str:
        return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"

    def followup(self, answer: str, user: str) -> str:
        return f"{answer}<|im_end|>\n" + self.turn(user, opens=False)


class MixtralV1(ChatFormat):
    """Mixtral-8x7B-Instruct-v0.1, laid out as mistral_common's InstructTokenizerV1 encodes it.

    v1 has no system role: the system text joins the first user turn as `system + "\\n\\n" + user`.
    mistral_common encodes every turn as its own sentencepiece call (each one gains the leading
    "▁"), user turns as `[INST] {content} [/INST]` and assistant turns as `{content}` + EOS. In
    one string that is `[INST] u [/INST] a</s>`: the space before `a` stands for the assistant's
    own leading "▁" (without it the tokenizer merges `]{`), and the text after `</s>` gains its
    "▁" from the tokenizer, as a new segment after a special token.
    """

    name = "mixtral-v1"

    def prefix(self, system: str | None, shots: Sequence[Shot]) -> str:
        if not shots:
            # The document must share the first [INST] with the system text; the fork point
            # falls after the "\n\n", which are byte-fallback tokens that never merge. No
            # system text: nothing is shared, the fork point is the start.
            return "" if system is None else f"[INST] {system}\n\n"
        text = ""
        for i, (user, assistant) in enumerate(shots):
            content = f"{system}\n\n{user}" if i == 0 and system is not None else user
            text += f"[INST] {content} [/INST] {assistant}</s>"
        return text  # fork point: right after the special </s>

    def turn(self, user: str, *, opens: bool) -> str:
        return f"{user} [/INST]" if opens else f"[INST] {user} [/INST]"

    def followup(self, answer: str, user: str) -> str:
        return f" {answer}</s>" + self.turn(user, opens=False)


# Which format a served model was trained on: MODEL_FAMILIES in runtime/served_model.py.
CHAT_FORMATS: dict[str, ChatFormat] = {f.name: f for f in (ChatML(), MixtralV1())}


def get_chat_format(name: str) -> ChatFormat:
    try:
        return CHAT_FORMATS[name]
    except KeyError:
        known = ", ".join(CHAT_FORMATS)
        raise TaskError(f"no chat format named {name!r}", hint=f"known: {known}") from None
