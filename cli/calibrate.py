"""`forkpoint calibrate`: server variants over one job, the winner written as a profile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forkpoint.cli.errors import reported
from forkpoint.cli.options import ProfileOption, TaskModuleOption, TaskOption, console


def calibrate(
    folder: Annotated[
        Path | None, typer.Argument(help="Your own documents (default: the generated corpus).")
    ] = None,
    profile: ProfileOption = "cpu-small",
    task: TaskOption = "invoices",
    task_module: TaskModuleOption = None,
    docs: Annotated[int, typer.Option(min=1, help="At most this many documents.")] = 1000,
    vary: Annotated[
        list[str] | None,
        typer.Option(
            help="An axis FIELD=V1,V2 (e.g. speculation.num_draft_tokens=4,8); repeat. "
            "Default: what is worth measuring first on the profile's hardware."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the report, calibration and profile.")] = (
        Path("calibration")
    ),
    decode_steps: Annotated[int, typer.Option(min=2, help="Steps the decode probe times.")] = 32,
    peer_vllm: Annotated[
        str | None,
        typer.Option(help="A Python with vLLM: run the same job through vLLM's OpenAI server."),
    ] = None,
    json_field: Annotated[
        str | None, typer.Option(help="For .json/.jsonl files: the (dotted) field with the text.")
    ] = None,
) -> None:
    """Measure a profile's server variants on one job; write the report, the calibration
    `perf/projection/project.py --calibration` reads, and the winner as a profile TOML."""
    from forkpoint.perf.bench.calibrate import Plan, calibrate
    from forkpoint.perf.bench.variants import default_axes, grid
    from forkpoint.perf.bench.workload import load_workload
    from forkpoint.runtime.profiles import get_profile

    with reported():
        chosen = get_profile(profile)
        job = load_workload(
            folder, task=task, task_module=task_module, docs=docs, json_field=json_field
        )
        variants = grid(chosen, vary if vary is not None else default_axes(chosen))
        peer = None
        if peer_vllm:
            from forkpoint.perf.bench.calibrate import vllm_peer

            peer = vllm_peer(peer_vllm)
        plan = Plan(chosen, job, variants, out, decode_steps=decode_steps, peer=peer)
        console.print(f"calibrating {chosen.name}: {', '.join(v.name for v in variants)}")
        outcome = calibrate(plan, say=console.print)
    console.print(f"winner: [bold]{outcome.winner}[/]")
    for path in outcome.files:
        typer.echo(str(path))
