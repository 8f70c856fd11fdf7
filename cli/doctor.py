"""`forkpoint doctor` and `forkpoint model prepare`: checks printed as a pass/fail table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from forkpoint.cli.errors import reported
from forkpoint.cli.options import ProfileOption

if TYPE_CHECKING:
    from forkpoint.runtime.checklist import Check

EXIT_CHECK_FAILED = 1
STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}

model_app = typer.Typer(no_args_is_help=True)


def print_checks(title: str, checks: list[Check]) -> None:
    """The table, then exit 1 if any check failed."""
    from forkpoint.runtime.checklist import any_failed

    table = Table("check", "status", "detail", "fix", title=title, title_justify="left")
    for check in checks:
        status = f"[{STYLE[check.status]}]{check.status}[/]"
        table.add_row(check.name, status, check.detail, check.fix)
    Console(width=160).print(table)
    if any_failed(checks):
        raise typer.Exit(EXIT_CHECK_FAILED)


def doctor(
    profile: ProfileOption = "cpu-small",
    gateway_port: Annotated[int, typer.Option(envvar="FORKPOINT_PORT")] = 8000,
) -> None:
    """Check this machine for a profile: GPUs, P2P, PCIe, power, NCCL, libcuda, disk, ports, model,
    and the profile's argv with SGLang's own parser."""
    from forkpoint.runtime.doctor import Doctor
    from forkpoint.runtime.profiles import get_profile

    with reported():
        chosen = get_profile(profile)
        checks = Doctor(chosen, gateway_port=gateway_port).run()
    print_checks(f"forkpoint doctor — profile {chosen.name}", checks)


@model_app.command()
def prepare(
    source: Annotated[str, typer.Option(help="Model folder, or a hub id in the local HF cache.")],
    profile: ProfileOption = "mixtral-awq-2x4090",
    gpus: Annotated[int | None, typer.Option(min=1, help="Default: the profile's tp.")] = None,
    gpu_memory_gib: Annotated[float, typer.Option(min=1.0, help="Per card.")] = 23.99,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Default: the profile's max running requests.")
    ] = None,
    request_tokens: Annotated[int, typer.Option(min=1, help="Prefix + document + output.")] = 3000,
    write_profile: Annotated[
        Path | None, typer.Option(help="Write a TOML profile serving this folder, if it passes.")
    ] = None,
) -> None:
    """Check a model folder against a profile (files, AWQ config, memory budget), offline."""
    from forkpoint.runtime.checklist import any_failed
    from forkpoint.runtime.model_folder import check_source, profile_toml, resolve_source
    from forkpoint.runtime.profiles import get_profile

    with reported():
        chosen = get_profile(profile)
        checks = check_source(
            source,
            chosen,
            gpus=gpus,
            gpu_memory_bytes=int(gpu_memory_gib * 1024**3),
            concurrency=concurrency,
            request_tokens=request_tokens,
        )
    if write_profile is not None and not any_failed(checks):
        folder = resolve_source(source)
        assert folder is not None  # check_source passed, so it found the folder
        try:
            text = profile_toml(chosen, folder)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--write-profile") from None
        write_profile.parent.mkdir(parents=True, exist_ok=True)
        write_profile.write_text(text)
        Console(stderr=True).print(f"wrote {write_profile}: use --profile {write_profile}")
    print_checks(f"forkpoint model prepare — {source} for {chosen.name}", checks)
