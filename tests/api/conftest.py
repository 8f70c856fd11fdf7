"""A gateway app with a real store; `start_workers=False` keeps accepted work queued.

Its client calls it as a local caller does (Host 127.0.0.1, which a loopback gateway requires),
and a loopback gateway with no key source is made open (FORKPOINT_OPEN=1) unless the test says
`open=False`: without it such a gateway refuses every request."""

import pytest
from fastapi.testclient import TestClient

from forkpoint.api.app import create_app
from forkpoint.api.settings import Settings
from forkpoint.runtime.client import is_loopback

KEY_SOURCES = {"api_keys", "api_keys_file", "admin_keys"}
LOCAL = "http://127.0.0.1:8000"  # the Host a local caller sends (TestClient's is 'testserver')


@pytest.fixture
def make_client(tmp_path):
    clients = []

    def make(**overrides) -> TestClient:
        if not KEY_SOURCES & overrides.keys() and is_loopback(overrides.get("host", "127.0.0.1")):
            overrides.setdefault("open", True)
        settings = Settings(
            db_path=tmp_path / f"gateway-{len(clients)}.db",
            sglang_url="http://127.0.0.1:9",  # nothing listens: these tests never reach it
            **overrides,
        )
        client = TestClient(create_app(settings, start_workers=False), base_url=LOCAL)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
