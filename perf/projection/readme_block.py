"""The README's projection tables are `project.py --markdown`'s output, between two markers, so
the figures cannot drift from the model.

    ./dev python perf/projection/readme_block.py          # rewrite the block in README.md
    ./dev python perf/projection/readme_block.py --check  # exit 1 if it differs (tests do this)
"""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

from forkpoint.perf.projection import project

README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN = "<!-- projection:begin (perf/projection/readme_block.py writes this block) -->"
END = "<!-- projection:end -->"


def generated() -> str:
    """What `project.py --markdown` prints with its defaults."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        project.main(["--markdown"])
    return out.getvalue().strip()


def current(readme: str) -> str:
    """The block now in the README (between the markers)."""
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"README.md has no projection block ({BEGIN} ... {END})")
    return readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    readme, block = README.read_text(), generated()
    if args.check:
        if current(readme) != block:
            raise SystemExit("README.md's projection block is stale: run this without --check")
        return
    head, rest = readme.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")


if __name__ == "__main__":
    main()
