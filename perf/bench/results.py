"""Where every perf script writes its results: one folder, `--out DIR`.

Without `--out`, a checkout writes into its own perf/results/, beside the committed benchmark
records the README cites; an installed forkpoint (this file in site-packages, no checkout around
it) writes into ./perf-results under the current directory, never into the package.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from forkpoint.perf import RECORDS


def default_dir() -> Path:
    """The checkout's perf/results/ when running from a checkout, else ./perf-results."""
    if RECORDS.is_dir() and (RECORDS.parents[1] / "pyproject.toml").is_file():
        return RECORDS
    return Path("perf-results")


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    """`--out DIR`, the same option in every script that saves."""
    parser.add_argument(
        "--out",
        type=Path,
        default=default_dir(),
        help="folder for the result files (default: %(default)s)",
    )


def write(stem: Path, report: dict, markdown: list[str]) -> Path:
    """Write <stem>.json and <stem>.md (the folder made if missing); print the Markdown."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    # default=str: flags hold paths (--out, folders), written as the text the user typed
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    stem.with_suffix(".md").write_text("\n".join(markdown) + "\n")
    print("\n".join(markdown))
    print(f"saved {stem}.json and .md")
    return stem


def save(kind: str, report: dict, markdown: list[str], out: Path, suffix: str = "") -> Path:
    """Write OUT/<kind>-<date>-<commit><suffix>.json and .md; print the Markdown."""
    stem = out / f"{kind}-{report['date'][:10]}-{report['commit'][:7]}{suffix}"
    return write(stem, report, markdown)
