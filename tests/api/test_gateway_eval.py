"""Evaluation over HTTP: a job submitted with labels is scored as its results are recorded."""

DOCS = [{"name": "a.txt", "text": "Ann Lee, ann@x.org"}, {"name": "b.txt", "text": "Bo Chan"}]
LABELS = [
    {"document": "a.txt", "expected": {"name": "Ann Lee", "email": "ann@x.org"}},
    {"document": "b.txt", "expected": {"name": "Bo Chan"}},
]


def test_labels_that_do_not_fit_the_documents_or_model_are_all_rejected(make_client):
    client = make_client()
    bad = [
        {"document": "zzz.txt", "expected": {"name": "X"}},
        {"document": "a.txt", "expected": {"email": "no-name"}},
    ]
    answer = client.post("/v1/jobs", json={"task": "contacts", "documents": DOCS, "labels": bad})
    assert answer.status_code == 422
    assert "zzz.txt is not one of the documents" in answer.json()["error"]
    assert "a.txt: name: Field required" in answer.json()["error"]
    assert client.get("/v1/jobs").json() == []


def test_an_eval_job_scores_the_results_recorded_so_far(make_client):
    client = make_client()
    job = client.post("/v1/jobs", json={"task": "contacts", "documents": DOCS, "labels": LABELS})
    assert job.status_code == 202
    job_id = job.json()["id"]
    empty = client.get(f"/v1/jobs/{job_id}/eval").json()
    assert empty["complete"] is False and empty["variants"][0]["documents"] == 0
    store = client.app.state.store  # record what the runner would have recorded
    got = {
        "name": "ann lee",
        "title": None,
        "organization": None,
        "email": "ann@x.org",
        "phone": None,
        "city": None,
    }
    store.record(
        job_id,
        0,
        {
            "file": "a.txt",
            "ok": True,
            "status": "ok",
            "data": got,
            "usage": {"prompt_tokens": 10, "completion_tokens": 5},
        },
    )
    store.record(
        job_id,
        1,
        {
            "file": "b.txt",
            "ok": False,
            "status": "truncated",
            "error": "limit",
            "usage": {"prompt_tokens": 9},
        },
    )
    scored = client.get(f"/v1/jobs/{job_id}/eval").json()
    variant = scored["variants"][0]
    assert scored["complete"] is True and scored["labelled"] == 2
    assert variant["documents"] == 2
    assert variant["valid_rate"] == 0.5 and variant["truncated_rate"] == 0.5
    assert variant["fields"]["name"] == {"exact": 0.0, "normalized": 0.5}
    assert variant["fields"]["email"] == {"exact": 0.5, "normalized": 0.5}


def test_a_job_without_labels_has_no_evaluation(make_client):
    client = make_client()
    job_id = client.post("/v1/jobs", json={"task": "contacts", "documents": DOCS}).json()["id"]
    assert client.get(f"/v1/jobs/{job_id}/eval").status_code == 404
