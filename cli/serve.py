"""`forkpoint serve`: the runtime and the gateway together, stopped together."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from forkpoint.cli.errors import reported
from forkpoint.cli.options import ProfileOption, SglangUrlOption

# On SIGTERM, clients following a job's results hold their streams open: give them this long,
# then close them (they resume; nothing accepted is lost) so a stop never hangs.
GRACEFUL_SECONDS = 10


def serve(
    profile: ProfileOption = "cpu-small",
    host: Annotated[str, typer.Option(envvar="FORKPOINT_HOST", help="Bind address.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(envvar="FORKPOINT_PORT")] = 8000,
    sglang_url: SglangUrlOption = None,
    open_: Annotated[
        bool,
        typer.Option(
            "--open",
            envvar="FORKPOINT_OPEN",
            help="Serve without API keys: every local caller is an admin. Loopback only, and "
            "only when no key is configured (FORKPOINT_API_KEYS, FORKPOINT_API_KEYS_FILE).",
        ),
    ] = False,
) -> None:
    """Start the runtime (unless --sglang-url) and the gateway; Ctrl-C stops both."""
    import uvicorn
    from pydantic import ValidationError

    from forkpoint.api.app import create_app
    from forkpoint.api.settings import Settings
    from forkpoint.errors import ProfileError
    from forkpoint.runtime.profiles import get_profile

    with reported():
        try:
            settings = Settings(
                host=host, port=port, profile=profile, sglang_url=sglang_url, open=open_
            )
        except ValidationError as exc:
            raise ProfileError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        if sglang_url:
            Console(stderr=True).print(f"gateway on http://{host}:{port} → runtime {sglang_url}")
            uvicorn.run(
                create_app(settings),
                host=host,
                port=port,
                log_level="info",
                timeout_graceful_shutdown=GRACEFUL_SECONDS,
            )
            return
        from forkpoint.runtime.launcher import RuntimeServer
        from forkpoint.runtime.supervisor import RuntimeSupervisor

        server = RuntimeServer(get_profile(profile))
        Console(stderr=True).print(
            f"starting the {profile} runtime (log: {server.log_path})", soft_wrap=True
        )
        supervisor = RuntimeSupervisor(server).start()
        try:
            settings = settings.model_copy(update={"sglang_url": supervisor.url})
            Console(stderr=True).print(
                f"gateway on http://{host}:{port} → runtime {server.url} (restarted if it dies)"
            )
            app = create_app(settings, supervisor=supervisor)
            uvicorn.run(
                app,
                host=host,
                port=port,
                log_level="info",
                timeout_graceful_shutdown=GRACEFUL_SECONDS,
            )
        finally:
            supervisor.stop()
