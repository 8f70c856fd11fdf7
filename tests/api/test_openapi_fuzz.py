"""Schemathesis against the gateway's own OpenAPI document: no input makes it answer 500.

Bounded: a fixed number of generated requests per operation. The runtime URL points at a closed
port, so operations that need the model answer 503 (the documented outage answer, not a crash);
everything else (validation, limits, schema checks, jobs, the store) runs for real.
"""

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from forkpoint.api.app import create_app
from forkpoint.api.settings import Settings

APP = create_app(
    Settings(db_path=":memory:", sglang_url="http://127.0.0.1:9", max_queued_documents=500),
    start_workers=False,
)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture(scope="module", autouse=True)
def running_app():
    with TestClient(APP):  # runs the lifespan: the store and the runner exist
        yield


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_generated_request_makes_the_gateway_answer_500(operation):
    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call()
        assert response.status_code < 500 or response.status_code == 503, (
            f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}"
        )

    check()
