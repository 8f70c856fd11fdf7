"""A gateway app with a real store; `start_workers=False` keeps accepted work queued."""

import pytest
from fastapi.testclient import TestClient

from forkpoint.api.app import create_app
from forkpoint.api.settings import Settings


@pytest.fixture
def make_client(tmp_path):
    clients = []

    def make(**overrides) -> TestClient:
        settings = Settings(
            db_path=tmp_path / f"gateway-{len(clients)}.db",
            sglang_url="http://127.0.0.1:9",  # nothing listens: these tests never reach it
            **overrides,
        )
        client = TestClient(create_app(settings, start_workers=False))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
