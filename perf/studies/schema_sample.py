"""Real-world JSON schemas through `Constraint.from_schema`: accepted, warned or rejected.

    python perf/studies/schema_sample.py               # downloads the 200 schemas at COMMIT
    python perf/studies/schema_sample.py --repo /path/to/jsonschemabench/.git   # a local clone

The sample: 20 schemas from each of the 10 collections of JSONSchemaBench (GitHub easy to ultra,
Glaive function calls, JSON Schema Store, Kubernetes, Snowplow, Washington Post), drawn once with
random.Random(0) from the commit below and listed here by name; the schemas themselves are not
stored. Each is checked as the gateway checks an inline schema: accepted (nothing lost while
decoding), warned (keywords xgrammar ignores while decoding, checked after), or rejected (a
SchemaError, with its reason). Two more columns: the same sample with `strict=True`, and as the
gateway checked it before warnings existed (SGLang's detector and xgrammar on the whole schema,
the 2020-12 metaschema for every draft). Saves perf/results/schema-sample.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path

from forkpoint.errors import SchemaError
from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.results import add_out_argument, write
from forkpoint.programs.constraints import Constraint

SOURCE = "guidance-ai/jsonschemabench"
COMMIT = "ba103c73756198dd9b149ddc7db7867da7a077f6"
RAW = f"https://raw.githubusercontent.com/{SOURCE}/{COMMIT}/data/{{}}.json"
SAMPLE = {  # collection (folder under data/) → file names without .json
    "Github_easy": "o12621 o34361 o39432 o42525 o45160 o46559 o48547 o51223 o58320 o58839 "
    "o60886 o65973 o81583 o83696 o88586 o89671 o90809 o90831 o9305 o9778",
    "Github_hard": "o21243 o21306 o21320 o21326 o2379 o24930 o27790 o40394 o4249 o48423 o5389 "
    "o5412 o56023 o60292 o69586 o76577 o82144 o83840 o89725 o9919",
    "Github_medium": "o11800 o16791 o21108 o40753 o5165 o55357 o58623 o61609 o6257 o62819 "
    "o71406 o74556 o7540 o82637 o83270 o84138 o85188 o90347 o9349 o9364",
    "Github_trivial": "o10018 o2058 o24891 o26954 o36264 o41591 o41658 o41665 o45213 o45633 "
    "o62379 o65459 o67600 o69510 o73407 o7488 o79654 o83140 o89639 o91099",
    "Github_ultra": "o21136 o21173 o21219 o21308 o38670 o50639 o53885 o56173 o58926 o62058 "
    "o6357 o65414 o65671 o66715 o70036 o73947 o73960 o80208 o81 o83390",
    "Glaiveai2K": "calculate_area_096a9111 calculate_area_0e6127c1 calculate_area_212285ec "
    "calculate_area_2bc7fdb4 calculate_area_47f2eee4 calculate_area_544a87f8 "
    "calculate_area_6ffbfd20 calculate_area_731ad8f5 calculate_area_75a4a605 "
    "calculate_area_992d9ca5 calculate_area_a8bec8b0 calculate_area_bd151164 "
    "calculate_area_cd0cc337 calculate_shipping_cost_9b51c3d0 create_invoice_c9c5c3e1 "
    "generate_invoice_2a7eeb4e generate_invoice_a03c471c generate_invoice_d09ef3a2 "
    "search_hotels_252ccbea search_restaurants_19db03d4",
    "JsonSchemaStore": "bashly cryproj dart-build drupal-layouts imageoptimizer "
    "minecraft-predicate minecraft-recipe modernizrrc ray-schema red_cog_repo.schema ruff "
    "rust-toolchain strings swa-cli.config template testenvironments tizen_workspace uplugin "
    "uproject vsix-publish",
    "Kubernetes": " ".join(
        f"kb_{n}_Normalized"
        for n in (1037, 115, 177, 17, 308, 345, 405, 447, 515, 522)
        + (619, 634, 639, 681, 709, 806, 820, 866, 938, 949)
    ),
    "Snowplow": " ".join(
        f"sp_{n}_Normalized"
        for n in (111, 120, 128, 133, 149, 158, 15, 16, 18, 204)
        + (360, 379, 37, 393, 395, 407, 408, 50, 59, 98)
    ),
    "WashingtonPost": " ".join(
        f"wp_{n}_Normalized"
        for n in (101, 103, 106, 10, 112, 113, 120, 121, 123, 2)
        + (32, 42, 57, 6, 71, 7, 83, 95, 99, 9)
    ),
}
_XGRAMMAR_PREFIX = re.compile(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ")
_KEYWORD = re.compile(r": (format '[^']*'|\w+) is not enforced")


def names() -> list[str]:
    return [f"{split}/{name}" for split, listed in SAMPLE.items() for name in listed.split()]


def read(name: str, repo: Path | None) -> str:
    if repo is not None:
        spec = f"{COMMIT}:data/{name}.json"
        return subprocess.run(
            ["git", "--git-dir", str(repo), "show", spec],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    with urllib.request.urlopen(RAW.format(name), timeout=30) as answer:
        return answer.read().decode()


def check(text: str) -> dict:
    """One schema as the gateway checks it, then again with strict=True."""
    started = time.perf_counter()
    try:
        constraint = Constraint.from_schema(text)
    except SchemaError as exc:
        reason = _XGRAMMAR_PREFIX.sub("", exc.message).strip()
        return {"outcome": "rejected", "reason": reason, "seconds": _since(started)}
    seconds = _since(started)
    keywords = [m.group(1) for line in constraint.unenforced if (m := _KEYWORD.search(line))]
    try:
        Constraint.from_schema(text, strict=True)
        strict = "accepted"
    except SchemaError:
        strict = "rejected"
    return {
        "outcome": "warned" if constraint.unenforced else "accepted",
        "unenforced": keywords,
        "strict": strict,
        "before": "rejected" if refused_before(json.loads(text)) else "accepted",
        "seconds": seconds,
    }


def refused_before(schema: dict) -> bool:
    """The gateway's check before this change (commit 4c07e01's programs/constraints.py)."""
    import jsonschema
    import xgrammar
    from sglang.srt.constrained.json_schema_validation import validate_xgrammar_json_schema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        validate_xgrammar_json_schema(schema)
        xgrammar.Grammar.from_json_schema(json.dumps(schema), any_whitespace=True)
    except (jsonschema.SchemaError, RuntimeError, ValueError, TypeError):
        return True
    return False


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 4)


def _bucket(reason: str) -> str:
    """A rejection reason without the specifics (names, numbers) that make each one unique."""
    head = reason.split(":")[0] if reason.startswith("not a valid JSON schema") else reason
    return re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "…", head)[:90]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, help="a local git clone of jsonschemabench")
    add_out_argument(parser)
    args = parser.parse_args()
    Constraint.from_schema({"type": "object"})  # warm-up: imports xgrammar and SGLang once
    rows = []
    for name in names():
        rows.append({"name": name, **check(read(name, args.repo))})
        print(f"{name}: {rows[-1]['outcome']}", flush=True)
    report = {
        **describe(),
        "source": SOURCE,
        "source_commit": COMMIT,
        "counts": dict(Counter(r["outcome"] for r in rows)),
        "strict_counts": dict(
            Counter("rejected" if r["outcome"] == "rejected" else r["strict"] for r in rows)
        ),
        "before_counts": dict(Counter(r.get("before", "rejected") for r in rows)),
        "rejected_reasons": dict(
            Counter(_bucket(r["reason"]) for r in rows if r["outcome"] == "rejected")
        ),
        "unenforced_keywords": dict(Counter(k for r in rows for k in set(r.get("unenforced", [])))),
        "rows": rows,
    }
    # one fixed name: the sample is fixed (COMMIT), and the README cites schema-sample.md
    write(args.out / "schema-sample", report, _markdown(report, rows))


def _markdown(report: dict, rows: list[dict]) -> list[str]:
    counts, strict = Counter(report["counts"]), Counter(report["strict_counts"])
    before = Counter(report["before_counts"])
    total = len(rows)
    lines = heading(
        "Real-world JSON schemas through Constraint.from_schema",
        report,
        f"{total} schemas from {SOURCE}@{COMMIT[:7]} (20 from each of its 10 collections).",
    )
    lines += [
        "| outcome | schemas | with strict=True | before this change |",
        "|---|---:|---:|---:|",
        f"| accepted | {counts['accepted']} | {strict['accepted']} | {before['accepted']} |",
        f"| accepted with warnings (checked after decoding) | {counts['warned']} | 0 | 0 |",
        f"| rejected (SchemaError, 422) | {counts['rejected']} | {strict['rejected']} "
        f"| {before['rejected']} |",
        "",
        "| collection | accepted | warned | rejected |",
        "|---|---:|---:|---:|",
    ]
    for split in SAMPLE:
        mine = Counter(r["outcome"] for r in rows if r["name"].startswith(split + "/"))
        lines.append(f"| {split} | {mine['accepted']} | {mine['warned']} | {mine['rejected']} |")
    lines += ["", "Keywords left to the check after decoding (schemas that have each):", ""]
    lines += ["| keyword | schemas |", "|---|---:|"]
    for keyword, n in Counter(report["unenforced_keywords"]).most_common():
        lines.append(f"| {keyword} | {n} |")
    lines += ["", "Why schemas were rejected:", "", "| reason | schemas |", "|---|---:|"]
    for reason, n in Counter(report["rejected_reasons"]).most_common():
        lines.append(f"| {reason.replace('|', '/')} | {n} |")
    seconds = sorted(r["seconds"] for r in rows)
    lines += [
        "",
        f"Check time per schema: median {seconds[total // 2]:.3f} s, max {seconds[-1]:.2f} s.",
    ]
    return lines


if __name__ == "__main__":
    main()
