"""The job's tokens as Mixtral counts them: its own tokenizer, shipped offline in mistral_common.

Mixtral-8x7B-Instruct-v0.1 uses Mistral's v1 SentencePiece tokenizer (32,000 pieces; the file
`mistral_common/data/tokenizer.model.v1` in the mistral_common wheel, no download). In v1
`[INST]`/`[/INST]` are plain text, `<s>` and `</s>` are control tokens: the server's HF tokenizer
adds one `<s>` per prompt and reads the `</s>` that closes each example turn as one token, so
this counts each `</s>` as one and encodes the text between.

Prompts are re-created from the bench report's corpus spec (perf/bench/corpus.py is
deterministic) with the mixtral-v1 chat format, and counted whole. Answers were not saved by the
bench, so outputs are the report's count scaled by Mixtral/SmolLM2 on reference answers built
from each document's own fields (vendor, number, date, currency, total, lines), in the compact
JSON the profiles ask for.

    ./dev python perf/studies/mixtral_tokens.py              # the full-size report's job
Saves perf/results/mixtral-tokens-<date>-<commit>.{json,md}; perf/projection/project.py reads
the newest for the report's corpus (perf/projection/mixtral_tokens.py).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.perf.projection.mixtral_tokens import KIND

Counter = Callable[[str], int]


def mixtral_counter() -> Counter:
    """Tokens of a text as the Mixtral server counts them inside a prompt (no `<s>`)."""
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    sp = MistralTokenizer.v1().instruct_tokenizer.tokenizer

    def count(text: str) -> int:
        parts = text.split("</s>")
        return sum(len(sp.encode(p, bos=False, eos=False)) for p in parts if p) + len(parts) - 1

    return count


def reference_answer(text: str) -> str:
    """The invoice's own fields as the compact JSON an answer holds (perf/bench/corpus.py)."""
    head = re.search(r"Invoice (\S+) from (.+)\nIssued (\S+); currency (\w+)\.", text)
    total = re.search(r"Total due: ([\d.]+)", text)
    assert head and total, "not a bench invoice"
    lines = re.findall(r"^- (.+): ([\d.]+)$", text, flags=re.MULTILINE)
    answer = {
        "vendor": head.group(2),
        "invoice_number": head.group(1),
        "issue_date": head.group(3),
        "due_date": None,
        "currency": head.group(4),
        "total": float(total.group(1)),
        "line_items": [{"description": d[:60], "amount": float(a)} for d, a in lines[:6]],
    }
    return json.dumps(answer, separators=(",", ":"))


def count_job(spec: CorpusSpec, mixtral: Counter, smol: Counter | None = None) -> dict[str, Any]:
    """Mixtral's counts of the job's prompts, its prefix, and the answer ratio."""
    from forkpoint.programs.prompt import task_prompt
    from forkpoint.programs.tasks.registry import get_task

    task = get_task("invoices")
    prompt = task_prompt(task, "mixtral-v1")
    docs = generate(spec)
    prefix = mixtral(prompt.prefix)
    prompts = sum(1 + prefix + mixtral(prompt.document_turn(text)) for _, text in docs)
    answers = [reference_answer(text) for _, text in docs]
    counts: dict[str, Any] = {
        "tokenizer": "mistral_common MistralTokenizer.v1 (tokenizer.model.v1, 32000 pieces)",
        "corpus": spec.__dict__,
        "documents": len(docs),
        "prefix_tokens": 1 + prefix,  # <s> and the shared prefix
        "prompt_tokens": prompts,
        "answer_tokens": sum(mixtral(a) for a in answers),
    }
    if smol is not None:
        smol_prompt = task_prompt(task, "chatml")
        counts["smollm2_prompt_tokens"] = sum(smol(smol_prompt.full(t)) for _, t in docs)
        counts["smollm2_prefix_tokens"] = smol(smol_prompt.prefix)
        counts["smollm2_answer_tokens"] = sum(smol(a) for a in answers)
    return counts


def smollm2_counter() -> Counter:
    from transformers import AutoTokenizer

    from forkpoint.runtime.embedded_model import ensure_smollm2

    tokenizer = AutoTokenizer.from_pretrained(str(ensure_smollm2()))
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def main() -> None:
    from forkpoint.perf.bench.machine import describe, heading
    from forkpoint.perf.bench.results import add_out_argument
    from forkpoint.perf.bench.results import save as save_results
    from forkpoint.perf.projection.project import FULL_SIZE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, default=FULL_SIZE)
    add_out_argument(parser)
    args = parser.parse_args()
    report = json.loads(args.source.read_text())
    counts = count_job(CorpusSpec(**report["corpus"]), mixtral_counter(), smollm2_counter())
    measured = report["runs"]["baseline"]
    record = {**describe(), "source": args.source.name, "counts": counts}
    lines = heading(
        "The job in Mixtral's tokens",
        record,
        f"{counts['documents']} documents of {args.source.name}, re-created from its corpus spec.",
    ) + [
        "| | SmolLM2 (re-counted) | SmolLM2 (the report) | Mixtral |",
        "|---|---:|---:|---:|",
        f"| prompt tokens | {counts['smollm2_prompt_tokens']:,} | {measured['prompt_tokens']:,} "
        f"| {counts['prompt_tokens']:,} |",
        f"| shared prefix | {counts['smollm2_prefix_tokens']:,} | {measured['prefix_tokens']:,} "
        f"| {counts['prefix_tokens']:,} |",
        f"| reference answers | {counts['smollm2_answer_tokens']:,} | "
        f"({measured['output_tokens']:,} written) | {counts['answer_tokens']:,} |",
    ]
    save_results(KIND, record, lines, args.out)


if __name__ == "__main__":
    main()
