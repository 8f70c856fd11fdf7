"""`forkpoint review`: a results file and its documents as one HTML page, without a gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forkpoint.cli.errors import reported
from forkpoint.cli.options import console


def review(
    results: Annotated[Path, typer.Argument(help="A results JSONL (forkpoint extract's).")],
    folder: Annotated[Path, typer.Argument(help="The folder its documents were read from.")],
    html: Annotated[
        Path, typer.Option("--html", help="Where to write the self-contained HTML page.")
    ] = Path("report.html"),
    json_field: Annotated[
        str | None, typer.Option(help="For .json/.jsonl files: the (dotted) field with the text.")
    ] = None,
) -> None:
    """Write one self-contained HTML file: each document with its values highlighted where
    they were found, unsure and ungrounded values marked, the raw answer and the reason for
    a failed one (the gateway's review page's document view, offline)."""
    with reported():
        from forkpoint.api.review import folder_documents, report_html

        documents, notes = folder_documents(results, folder, json_field=json_field)
        html.write_text(report_html(f"{results.name}: {folder}", documents), encoding="utf-8")
    for note in notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    console.print(f"{len(documents)} documents: {html}", highlight=False)
