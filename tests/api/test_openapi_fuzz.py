"""Schemathesis against the gateway's own OpenAPI document: no input makes it answer 500.

Bounded: a fixed number of generated requests per operation. The runtime URL points at a closed
port, so operations that need the model answer 503 (the documented outage answer, not a crash);
everything else (validation, limits, schema checks, jobs, the store) runs for real.
"""

import io
import tempfile
import zipfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forkpoint.api.app import create_app
from forkpoint.api.settings import Settings

APP = create_app(
    Settings(
        db_path=":memory:",
        files_path=Path(tempfile.mkdtemp(prefix="fp-fuzz-files-")),
        sglang_url="http://127.0.0.1:9",
        max_queued_documents=500,
        open=True,
        allowed_hosts=["testserver"],  # the Host schemathesis and TestClient send
    ),
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


# Schemathesis sends /v1/jobs as multipart, but with few or no parts; this posts random parts:
# repeated or unknown fields, deep or broken JSON in 'schema', and files that start like a PDF,
# a zip, JSON or HTML and go on as random bytes.
FILE_STARTS = [b"", b"%PDF-1.7\n", b"PK\x03\x04", b"[", b"{", b"<html><body>", b"\xef\xbb\xbf"]
FIELD_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["contacts", "{}", '{"type": "object"}', "[" * 5000, '{"a":', "body.text"]),
)


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


FILE_CONTENTS = st.one_of(
    st.builds(bytes.__add__, st.sampled_from(FILE_STARTS), st.binary(max_size=2000)),
    st.builds(
        zipped,
        st.dictionaries(
            st.sampled_from(["word/document.xml", "[Content_Types].xml", "_rels/.rels", "x"]),
            st.binary(max_size=300),
            max_size=3,
        ),
    ),
)
FILES = st.tuples(
    st.sampled_from(["files"] * 6 + ["schema", "task"]),
    st.tuples(
        st.builds(
            str.__add__,
            st.text(max_size=12),
            st.sampled_from(["", ".txt", ".pdf", ".docx", ".json", ".jsonl", ".html"]),
        ),
        FILE_CONTENTS,
    ),
)
ANY_FIELDS = st.dictionaries(
    st.sampled_from(["task", "schema", "instructions", "json_field", "files", "other"]),
    st.lists(FIELD_VALUES, min_size=1, max_size=2),
    max_size=4,
)


def with_task(fields: dict[str, list[str]]) -> dict[str, list[str]]:
    """A valid task choice, so that the job's files are read (an invalid one is refused first)."""
    return {**{k: v for k, v in fields.items() if k != "schema"}, "task": ["contacts"]}


FIELDS = st.one_of(ANY_FIELDS, ANY_FIELDS.map(with_task))


def test_no_multipart_job_makes_the_gateway_answer_500():
    with TestClient(APP) as client:  # its own lifespan: schemathesis's calls close theirs

        @given(fields=FIELDS, files=st.lists(FILES, max_size=4))
        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        def check(fields, files):
            parts = files or [("files", ("a.txt", b"x"))]
            response = client.post("/v1/jobs", data=fields, files=parts)
            sent = f"{fields} {files}"[:400]
            assert response.status_code < 500, f"{sent} → {response.text[:300]}"

        check()
