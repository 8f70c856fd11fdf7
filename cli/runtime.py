"""`forkpoint runtime up|args|check`: look at, validate and run a launch profile."""

from __future__ import annotations

import shlex
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from forkpoint.cli.errors import reported

if TYPE_CHECKING:
    from forkpoint.runtime.launcher import RuntimeServer
    from forkpoint.runtime.router import RouterServer

app = typer.Typer(no_args_is_help=True)
console = Console()
ProfileOption = Annotated[
    str, typer.Option(envvar="FORKPOINT_PROFILE", help="Profile name or .toml path.")
]


@app.command()
def args(profile: ProfileOption = "cpu-small") -> None:
    """Print the exact SGLang launch command and the environment it adds."""
    from forkpoint.runtime.launcher import resolve
    from forkpoint.runtime.profiles import get_profile

    with reported():
        chosen = resolve(get_profile(profile))
        for key, value in sorted(chosen.env.items()):
            typer.echo(f"{key}={shlex.quote(value)} \\")
        typer.echo(shlex.join(chosen.argv()))


@app.command()
def check(
    profile: ProfileOption = "cpu-small",
    all_: Annotated[bool, typer.Option("--all", help="Check every built-in profile.")] = False,
) -> None:
    """Validate a profile and its argv with SGLang's own argument parser."""
    from forkpoint.runtime.profiles import BUILTIN_PROFILES, get_profile
    from forkpoint.runtime.sglang_args import check_profile, describe

    with reported():
        chosen = list(BUILTIN_PROFILES.values()) if all_ else [get_profile(profile)]
    rejected: typer.Exit | None = None
    for each in chosen:  # every profile is checked; the exit code is the last rejection's
        try:
            with reported():
                console.print(f"[green]ok[/] {each.name}: {describe(check_profile(each))}")
        except typer.Exit as exit_:
            rejected = exit_
    if rejected is not None:
        raise rejected


@app.command()
def up(profile: ProfileOption = "cpu-small") -> None:
    """Run an SGLang server for the profile in the foreground until Ctrl-C."""
    from forkpoint.runtime.launcher import RuntimeServer
    from forkpoint.runtime.profiles import get_profile

    with reported():
        server = RuntimeServer(get_profile(profile))
        console.print(f"starting {profile} (log: {server.log_path})")
        _run_until_interrupted(server, f"{server.url} — Ctrl-C stops it")


@app.command()
def router(
    worker_url: Annotated[list[str], typer.Option(help="An SGLang worker URL; repeat per worker.")],
    host: str = "127.0.0.1",
    port: int = 30080,
    policy: str = "cache_aware",
    balance_abs_threshold: Annotated[
        int, typer.Option(help="Load difference (requests) tolerated before balancing.")
    ] = 64,
) -> None:
    """Run sglang-router in front of several runtimes until Ctrl-C (point the gateway at it)."""
    from pydantic import ValidationError

    from forkpoint.errors import ProfileError
    from forkpoint.runtime.router import RouterProfile, RouterServer

    with reported():
        try:
            profile = RouterProfile(
                worker_urls=tuple(worker_url),
                host=host,
                port=port,
                policy=policy,
                balance_abs_threshold=balance_abs_threshold,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ProfileError(f"router: {first['loc'][0]}: {first['msg']}") from None
        server = RouterServer(profile)
        console.print(f"starting sglang-router (log: {server.log_path})")
        _run_until_interrupted(server, f"{server.url} → {', '.join(profile.worker_urls)}")


def _run_until_interrupted(server: RuntimeServer | RouterServer, where: str) -> None:
    """Start `server`, say where it is, and keep it up until it exits or Ctrl-C."""
    with server:
        console.print(f"[green]ready[/] at {where}")
        try:
            while server.running:
                time.sleep(1)
        except KeyboardInterrupt:
            console.print("stopping")
