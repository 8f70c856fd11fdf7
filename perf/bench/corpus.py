"""A deterministic corpus of invoice-like documents for the benchmark.

Every document is different from its first line on (its own vendor, number and date), so no
two documents share a prefix beyond the task's: the cache can only help through the fork point.
Lengths vary between `min_tokens` and `max_tokens` (estimated at 4 characters a token; the
benchmark reports the runtime's exact counts) by adding terms, notes and line items.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

WORDS = (
    "payment delivery goods services order account invoice period contract shipment warehouse "
    "customer supplier terms conditions quantity unit price discount schedule receipt transfer "
    "reference project milestone support maintenance license renewal freight insurance handling"
).split()
VENDORS = (
    "Alder Birch Cedar Dunmore Elstree Fenwick Garrow Hollins "
    "Ingram Jarrow Kessel Lindow Marlow Norland Orwell Penrose"
).split()
KINDS = ("Supplies", "Logistics", "Consulting", "Systems", "Printing", "Catering", "Engineering")
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK")


@dataclass(frozen=True)
class CorpusSpec:
    documents: int = 1000
    min_tokens: int = 300
    max_tokens: int = 2000
    seed: int = 1


def generate(spec: CorpusSpec) -> list[tuple[str, str]]:
    """(name, text) pairs, the same for the same spec."""
    rng = random.Random(spec.seed)
    return [(f"doc-{i:05d}.txt", _invoice(rng, i, spec)) for i in range(spec.documents)]


def _invoice(rng: random.Random, index: int, spec: CorpusSpec) -> str:
    target_chars = 4 * rng.randint(spec.min_tokens, spec.max_tokens)
    vendor = f"{rng.choice(VENDORS)} {rng.choice(KINDS)} Ltd"
    currency = rng.choice(CURRENCIES)
    lines = [
        f"Invoice {rng.choice('ABCDEFGH')}-{index:05d}-{rng.randint(100, 999)} from {vendor}",
        f"Issued 2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}; currency {currency}.",
        "",
    ]
    total = 0.0
    for _ in range(rng.randint(1, 6)):
        amount = round(rng.uniform(10, 5000), 2)
        total += amount
        lines.append(f"- {' '.join(rng.choices(WORDS, k=rng.randint(2, 5)))}: {amount:.2f}")
    lines += [f"Total due: {total:.2f} {currency}", "", "Notes:"]
    while sum(len(line) + 1 for line in lines) < target_chars:
        sentence = " ".join(rng.choices(WORDS, k=rng.randint(8, 20))).capitalize() + "."
        lines.append(sentence)
    return "\n".join(lines) + "\n"
