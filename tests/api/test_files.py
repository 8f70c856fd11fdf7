"""OpenAI's Files API on the gateway, driven by the real `openai` package over the in-process app
(no runtime needed):

- an upload (purpose "batch" only) is retrieved, listed with OpenAI's cursor paging, downloaded
  byte for byte and deleted; then it is 404;
- a file belongs to the key that uploaded it: another key gets 404 and does not list it;
- one file is at most FORKPOINT_MAX_FILE_BYTES and one key's files together at most
  FORKPOINT_MAX_FILE_BYTES_PER_KEY (413), and a refused upload leaves nothing on disk;
- the client's filename is only a name; bytes live under the store's root, one file per id;
- `sweep` removes bytes without a row (a crash between rename and insert), `purge` old files.
"""

import io
import os
import stat
import time

import openai
import pytest
from openai_client import openai_client

from forkpoint.api.auth import owner_id
from forkpoint.api.files import FileStore
from forkpoint.errors import TooLarge

JSONL = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'


def upload(client, data: bytes, *, key: str = "k", name: str = "in.jsonl", purpose="batch"):
    """A raw upload through the TestClient: the status and body are the test's to check."""
    return client.post(
        "/v1/files",
        files={"file": (name, data)},
        data={"purpose": purpose},
        headers={"Authorization": f"Bearer {key}"},
    )


def stored(client) -> list[str]:
    """The names of everything under the gateway's file root."""
    return sorted(os.listdir(client.app.state.files.root))


# --- the life of a file ------------------------------------------------------------------------


def test_an_upload_is_retrieved_listed_downloaded_and_deleted_then_it_is_404(make_client):
    files = openai_client(make_client(), "k").files
    created = files.create(file=("in.jsonl", io.BytesIO(JSONL)), purpose="batch")
    assert created.id.startswith("file-")
    assert (created.object, created.purpose, created.filename) == ("file", "batch", "in.jsonl")
    assert (created.bytes, created.status) == (len(JSONL), "processed")
    assert files.retrieve(created.id) == created
    assert [f.id for f in files.list()] == [created.id]
    assert files.content(created.id).content == JSONL

    deleted = files.delete(created.id)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(openai.NotFoundError):
        files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        files.content(created.id)
    with pytest.raises(openai.NotFoundError):
        files.delete(created.id)
    assert list(files.list()) == []


def test_the_listing_pages_like_openais_cursor_list(make_client):
    client = make_client()
    files = openai_client(client, "k").files
    ids = [
        files.create(file=(f"{i}.jsonl", io.BytesIO(JSONL)), purpose="batch").id for i in range(5)
    ]
    first = client.get("/v1/files", params={"limit": 2, "order": "asc"}).json()
    assert [f["id"] for f in first["data"]] == ids[:2]
    assert (first["object"], first["first_id"], first["last_id"]) == ("list", ids[0], ids[1])
    assert first["has_more"] is True
    last = client.get("/v1/files", params={"limit": 2, "order": "asc", "after": ids[3]}).json()
    assert ([f["id"] for f in last["data"]], last["has_more"]) == ([ids[4]], False)
    # openai's auto-pagination follows `after` until has_more is false
    assert [f.id for f in files.list(limit=2, order="asc")] == ids
    assert [f.id for f in files.list(limit=2)] == ids[::-1]  # newest first by default
    assert [f.id for f in files.list(purpose="batch", after=ids[2], order="asc")] == ids[3:]
    assert list(files.list(purpose="assistants")) == []


def test_a_limit_outside_1_to_10000_is_refused(make_client):
    client = make_client()
    assert client.get("/v1/files", params={"limit": 0}).status_code == 422
    assert client.get("/v1/files", params={"limit": 10001}).status_code == 422
    assert client.get("/v1/files", params={"order": "sideways"}).status_code == 422


# --- whose file is whose -----------------------------------------------------------------------


def test_another_keys_file_is_404_everywhere_and_not_in_its_list(make_client):
    client = make_client(api_keys=["a", "b"], admin_keys=["root"])
    owner = openai_client(client, "a").files
    mine = owner.create(file=("a.jsonl", io.BytesIO(JSONL)), purpose="batch")
    other = openai_client(client, "b").files
    with pytest.raises(openai.NotFoundError, match=f"no file {mine.id}"):
        other.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.content(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.delete(mine.id)
    assert list(other.list()) == []
    assert [f.id for f in owner.list()] == [mine.id]  # still there
    admin = openai_client(client, "root").files
    assert [f.id for f in admin.list()] == [mine.id]  # an admin sees every key's files
    assert client.app.state.files.get(mine.id).owner == owner_id("a")


# --- what is refused ---------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", ["fine-tune", "assistants", "vision", "nonsense", ""])
def test_only_the_batch_purpose_is_accepted(make_client, purpose):
    client = make_client()
    refused = upload(client, JSONL, purpose=purpose)
    assert refused.status_code == 422
    assert "'batch'" in refused.json()["error"]
    assert stored(client) == []


def test_an_upload_without_a_file_part_is_refused(make_client):
    client = make_client()
    refused = client.post("/v1/files", files={"purpose": (None, "batch")})
    assert refused.status_code == 422
    assert "'file' part" in refused.json()["error"]


def test_a_file_over_max_file_bytes_is_413_and_leaves_nothing_on_disk(make_client):
    client = make_client(max_file_bytes=1024)
    refused = upload(client, b"x" * 1025)
    assert refused.status_code == 413
    assert "larger than 1024 bytes" in refused.json()["error"]
    assert stored(client) == []
    assert client.get("/v1/files").json()["data"] == []
    assert upload(client, b"x" * 1024).status_code == 200  # the limit itself is allowed


def test_a_key_past_its_quota_is_413_until_it_deletes_files(make_client):
    client = make_client(api_keys=["a", "b"], max_file_bytes_per_key=2048)
    first = upload(client, b"x" * 1500, key="a").json()
    refused = upload(client, b"y" * 1000, key="a")
    assert refused.status_code == 413
    assert "quota of 2048 bytes" in refused.json()["error"]
    assert "delete files" in refused.json()["hint"]
    assert stored(client) == [first["id"]]
    assert upload(client, b"y" * 1000, key="b").status_code == 200  # the quota is per key
    client.delete(f"/v1/files/{first['id']}", headers={"Authorization": "Bearer a"})
    assert upload(client, b"y" * 1000, key="a").status_code == 200


def test_a_hostile_filename_is_kept_only_as_a_name(make_client):
    client = make_client()
    answer = upload(client, JSONL, name="../../etc/passwd").json()
    assert answer["filename"] == "../../etc/passwd"
    assert stored(client) == [answer["id"]]
    assert client.get(f"/v1/files/{answer['id']}/content").content == JSONL
    long = upload(client, JSONL, name="n" * 1000).json()
    assert long["filename"] == "n" * 255


# --- the store itself --------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    files = FileStore(tmp_path / "gateway.db", tmp_path / "files")
    yield files
    files.close()


def save(store: FileStore, data: bytes, owner: str = "o"):
    return store.save(owner, "batch", "in.jsonl", [data], max_bytes=10**6, max_owner_bytes=None)


def test_bytes_are_private_to_the_gateway_user(store):
    record = save(store, JSONL)
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path(record).stat().st_mode) == 0o600
    assert store.path(record) == store.root / record.id


def test_an_upload_that_fails_midway_leaves_nothing(store):
    def broken():
        yield b"half of it"
        raise OSError("the client went away")

    with pytest.raises(OSError, match="went away"):
        store.save("o", "batch", "in.jsonl", broken(), max_bytes=10**6, max_owner_bytes=None)
    assert os.listdir(store.root) == []
    assert store.list(None) == []


def test_sweep_removes_bytes_without_a_row_and_keeps_stored_files(store):
    record = save(store, JSONL)
    (store.root / "file-0123456789abcdef0123456789abcdef").write_bytes(b"renamed, row lost")
    (store.root / ".part-0123").write_bytes(b"a crashed upload")
    assert store.sweep() == 2
    assert os.listdir(store.root) == [record.id]
    assert store.path(record).read_bytes() == JSONL


def test_purge_removes_the_files_created_before_the_cutoff(store):
    old = save(store, b"old")
    cutoff = time.time()
    new = save(store, b"new")
    assert store.purge(cutoff) == 1
    assert (store.get(old.id), store.get(new.id)) == (None, new)
    assert os.listdir(store.root) == [new.id]
    assert store.owner_bytes("o") == 3


def test_writing_a_batch_file_twice_with_its_id_keeps_the_first(store):
    file_id = "file-" + "b" * 32
    lines = [b'{"a": 1}\n', b'{"b": 2}\n']
    first = store.write(
        "o", "batch_output", "out.jsonl", lines, batch_id="batch_1", file_id=file_id
    )
    again = store.write(
        "o", "batch_output", "out.jsonl", [b"other"], batch_id="batch_1", file_id=file_id
    )
    assert again == first
    assert (first.id, first.bytes, first.batch_id) == (file_id, 18, "batch_1")
    assert store.path(first).read_bytes() == b"".join(lines)
    with pytest.raises(ValueError, match="a file id"):
        store.write("o", "batch_output", "x", [], batch_id="batch_1", file_id="../escape")


def test_two_uploads_at_once_cannot_both_pass_the_quota(store):
    def racing():
        yield b"x" * 1000
        # another upload of the same key is stored while this one is still streaming
        store.save("o", "batch", "b", [b"y" * 1500], max_bytes=10**6, max_owner_bytes=2048)

    with pytest.raises(TooLarge, match="quota of 2048"):
        store.save("o", "batch", "a", racing(), max_bytes=10**6, max_owner_bytes=2048)
    assert [record.filename for record in store.list("o")] == ["b"]
    assert len(os.listdir(store.root)) == 1
