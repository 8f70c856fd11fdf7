"""The gateway's door: a key is checked before the body is read, and the body limit counts the
bytes actually received (a chunked body has no Content-Length to trust)."""

import json

from forkpoint.api import door

BIG = 4096  # bytes; every client here has max_body_bytes=2048


def chunks(total: int, size: int = 512):
    """A body without Content-Length: httpx sends an iterator as chunked transfer encoding."""
    yield b'{"task": "contacts", "documents": [{"name": "a.txt", "text": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}]}'


def test_a_chunked_body_past_the_limit_is_413_in_the_forkpoint_shape(make_client):
    client = make_client(max_body_bytes=2048)
    headers = {"content-type": "application/json"}
    for path in ("/v1/jobs", "/v1/extract"):
        answer = client.post(path, content=chunks(BIG), headers=headers)
        assert answer.status_code == 413, (path, answer.text)
        assert answer.json()["kind"] == "TooLarge" and "2048 limit" in answer.json()["error"]
    small = client.post("/v1/jobs", content=chunks(512), headers=headers)
    assert small.status_code == 202, small.text  # under the limit, chunked is fine


def test_a_chunked_multipart_upload_past_the_limit_is_413(make_client):
    client = make_client(max_body_bytes=2048)
    boundary = "fp-boundary"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="task"\r\n\r\ncontacts\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()

    def body():
        yield part
        for _ in range(8):
            yield b"y" * 512
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    answer = client.post("/v1/jobs", content=body(), headers=headers)
    assert answer.status_code == 413 and answer.json()["kind"] == "TooLarge"


def test_a_request_without_a_key_is_refused_before_its_body_is_read(make_client, monkeypatch):
    client = make_client(api_keys=["k"], max_body_bytes=2048)
    read = []
    counted = door.Door._counted

    def spy(self, receive, limit):  # records every body chunk the gateway takes in
        inner = counted(self, receive, limit)

        async def spying():
            message = await inner()
            read.append(len(message.get("body", b"")))
            return message

        return spying

    monkeypatch.setattr(door.Door, "_counted", spy)
    refused = client.post("/v1/jobs", content=chunks(1024), headers={"content-type": "x/y"})
    assert refused.status_code == 401 and read == []  # not one byte of the body was read
    keyed = client.post(
        "/v1/jobs",
        content=json.dumps({"task": "contacts", "documents": [{"name": "a", "text": "Ann"}]}),
        headers={"Authorization": "Bearer k", "content-type": "application/json"},
    )
    assert keyed.status_code == 202 and sum(read) > 0


def test_metrics_need_a_key_unless_the_gateway_is_open(make_client):
    keyed = make_client(api_keys=["k"])
    assert keyed.get("/metrics").status_code == 401
    assert keyed.get("/metrics", headers={"Authorization": "Bearer k"}).status_code == 200
    assert keyed.get("/healthz").status_code == 200  # liveness stays open for probes
    open_ = make_client(open=True)  # FORKPOINT_OPEN=1: loopback, no key source
    assert open_.get("/metrics").status_code == 200
