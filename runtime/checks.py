"""Validate a profile the way SGLang will: its own parser, on the argv we would launch."""

from __future__ import annotations

from typing import Any

from forkpoint.programs.errors import ProfileError
from forkpoint.runtime.profiles import LaunchProfile


def check_profile(profile: LaunchProfile) -> Any:
    """Parse the profile's argv with `prepare_server_args`; returns SGLang's ServerArgs."""
    from sglang.srt.server_args import prepare_server_args

    # The embedded model is resolved at launch; a placeholder path parses the same way.
    concrete = profile if profile.model_path else profile.model_copy(update={"model_path": "x"})
    argv = concrete.argv()[3:]  # drop `python -m sglang.launch_server`
    try:
        return prepare_server_args(argv)
    except SystemExit as exc:  # argparse reports bad flags by exiting
        raise ProfileError(f"SGLang rejects the argv of {profile.name!r} (see above)") from exc
    except (ValueError, TypeError) as exc:
        raise ProfileError(f"SGLang rejects profile {profile.name!r}: {exc}") from exc
