"""One real SGLang server (the embedded cpu-small profile) for the whole test session."""

import pytest

from forkpoint.runtime.launcher import RuntimeServer
from forkpoint.runtime.profiles import get_profile


@pytest.fixture(scope="session")
def sglang_server():
    """A running cpu-small server on a free port; `.url` and `.profile` for the tests."""
    profile = get_profile("cpu-small").model_copy(update={"port": 0})
    with RuntimeServer(profile) as server:
        yield server
