"""One errors module: every layer reads an error's status, exit code and kind from its class.

No runtime needed: a tiny FastAPI app with the gateway's error handlers, and the client's
reading of answers built by hand.
"""

import logging

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from forkpoint import errors
from forkpoint.api import errors as api_errors
from forkpoint.errors import ForkpointError, error_class
from forkpoint.programs.gateway_client import error_from

SHAPE = {"error", "hint", "retryable", "kind"}


def all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from all_subclasses(sub)


PUBLIC = sorted(
    (c for c in all_subclasses(ForkpointError) if c.__module__ == errors.__name__),
    key=lambda c: c.__name__,
)
EXPECTED = {  # class: (HTTP status, CLI exit code)
    "SchemaError": (422, 2),
    "TaskError": (422, 2),
    "DocumentError": (422, 2),
    "OutputError": (422, 2),
    "ProfileError": (422, 2),
    "RequestError": (422, 2),
    "TooLarge": (413, 2),
    "RuntimeUnavailable": (503, 3),
    "RuntimeTimeout": (504, 3),
    "QueueFull": (429, 3),
    "IdempotencyConflict": (409, 1),
    "Conflict": (409, 1),
    "NotFound": (404, 1),
    "Unauthorized": (401, 1),
    "KeysUnavailable": (503, 3),
}


def test_every_error_class_has_a_status_and_an_exit_code():
    assert (ForkpointError.http_status, ForkpointError.exit_code) == (500, 1)
    public = {c.__name__: c for c in PUBLIC if not c.__name__.startswith("_")}
    assert set(public) == set(EXPECTED)
    for name, cls in public.items():
        assert (cls.http_status, cls.exit_code) == EXPECTED[name], name


def test_the_errors_other_layers_raise_are_the_same_classes():
    from forkpoint.api import store

    assert store.QueueFull is errors.QueueFull and errors.QueueFull.retryable
    assert store.IdempotencyConflict is errors.IdempotencyConflict


class Item(BaseModel):
    n: int


@pytest.fixture
def client():
    app = FastAPI()
    api_errors.install(app)

    @app.get("/raise/{kind}")
    def raise_(kind: str):
        raise error_class(kind)(f"a {kind}", hint="do this")

    @app.post("/items")
    def items(item: Item):
        return item

    @app.get("/crash")
    def crash():
        raise KeyError("secret-internal-detail")

    return TestClient(app)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_a_forkpoint_error_in_a_route_answers_its_status_and_kind(client, kind):
    answer = client.get(f"/raise/{kind}")
    assert answer.status_code == EXPECTED[kind][0]
    assert answer.json() == {
        "error": f"a {kind}",
        "hint": "do this",
        "retryable": error_class(kind).retryable,
        "kind": kind,
    }


def test_a_profile_error_in_a_route_is_422_not_500(client):
    assert client.get("/raise/ProfileError").status_code == 422


def test_outages_say_when_to_retry_and_401_says_how_to_authenticate(client):
    assert client.get("/raise/QueueFull").headers["Retry-After"] == "30"
    assert client.get("/raise/RuntimeUnavailable").headers["Retry-After"] == "30"
    assert client.get("/raise/Unauthorized").headers["WWW-Authenticate"] == "Bearer"
    assert "Retry-After" not in client.get("/raise/TaskError").headers


def test_an_invalid_json_body_answers_422_in_the_forkpoint_shape(client):
    json_type = {"content-type": "application/json"}
    broken = client.post("/items", content=b"{not json", headers=json_type)
    assert broken.status_code == 422
    assert set(broken.json()) == SHAPE and broken.json()["kind"] == "RequestError"
    wrong = client.post("/items", json={"n": "many"})
    assert wrong.status_code == 422
    assert "body.n: Input should be a valid integer" in wrong.json()["error"]


def test_no_such_route_answers_404_in_the_forkpoint_shape(client):
    answer = client.get("/nowhere")
    assert answer.status_code == 404
    assert answer.json()["kind"] == "NotFound" and set(answer.json()) == SHAPE


def test_an_unexpected_exception_is_500_logged_and_answered_without_its_traceback(client, caplog):
    with caplog.at_level(logging.ERROR, logger="forkpoint.api"):
        answer = client.get("/crash")
    assert answer.status_code == 500
    assert set(answer.json()) == SHAPE and answer.json()["kind"] == "ForkpointError"
    assert "secret-internal-detail" not in answer.text and "Traceback" not in answer.text
    assert "GET /crash" in caplog.text and "secret-internal-detail" in caplog.text
    rid = answer.headers["X-Request-Id"]
    assert rid in answer.json()["hint"] and f"request {rid}" in caplog.text  # found in the log


def test_every_answer_has_a_request_id_and_a_sane_one_from_the_caller_is_kept(client):
    assert client.get("/nowhere", headers={"X-Request-Id": "job-7.a"}).headers["X-Request-Id"] == (
        "job-7.a"
    )
    made_up = client.get("/nowhere", headers={"X-Request-Id": "x" * 65 + "\x01"})
    assert len(made_up.headers["X-Request-Id"]) == 16


def test_the_gateway_body_size_and_auth_refusals_take_the_forkpoint_shape(make_client):
    client = make_client(max_body_bytes=2048, api_keys=["k"])
    refused = client.get("/v1/jobs")
    assert refused.status_code == 401 and refused.json()["kind"] == "Unauthorized"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    huge = client.post("/v1/jobs", content=b"x" * 4096, headers={"Authorization": "Bearer k"})
    assert huge.status_code == 413
    assert set(huge.json()) == SHAPE and huge.json()["kind"] == "TooLarge"
    missing = client.get("/v1/jobs/nope", headers={"Authorization": "Bearer k"})
    assert missing.status_code == 404 and missing.json()["kind"] == "NotFound"


def _answer(status: int, body) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("GET", "http://gw/v1/jobs"))


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_the_client_raises_the_class_the_body_names(kind):
    status = EXPECTED[kind][0]
    body = {"error": "nope", "hint": "try this", "retryable": False, "kind": kind}
    error = error_from(_answer(status, body))
    assert type(error) is error_class(kind)
    assert error.message == f"gateway answered {status}: nope" and error.hint == "try this"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (413, errors.DocumentError),
        (422, errors.DocumentError),
        (429, errors.RuntimeUnavailable),
        (503, errors.RuntimeUnavailable),
        (404, ForkpointError),
        (500, ForkpointError),
    ],
)
def test_without_a_known_kind_the_client_falls_back_on_the_status(status, cls):
    for body in ({"error": "x"}, {"detail": "x"}, {"error": "x", "kind": "KeyError"}, ["x"]):
        assert type(error_from(_answer(status, body))) is cls
    assert error_class("_Invalid") is None and error_class(None) is None
