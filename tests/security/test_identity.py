"""Identity and sessions (issue #14): a principal is its key's id, never the key's reusable name — jobs, feedback,
audit rows and UI sessions are tied to the id, so a new key that takes a revoked key's name inherits nothing.
Each test is one case of the adversarial campaign (docs/security/identity.md)."""
from __future__ import annotations

import json

from identity_fixtures import Api, api, principal_of  # noqa: F401 - api is a fixture

from assistant.services.access import Principal
from assistant.services.jobs import LEGACY_OWNER, JobManager
from assistant.sqlite import open_db


# -- jobs: owned by the key id ---------------------------------------------------------------------------------------

def upload(api: Api, secret: str, kb: str, name: str, text: str) -> dict:
    r = api.client.post(f"/api/v1/kbs/{kb}/documents", headers=api.h(secret),
                        files=[("files", (name, text.encode("utf-8"), "text/markdown"))])
    assert r.status_code == 202, r.text
    return api.wait_job(r.json()["job_id"], secret)


def test_a_new_key_named_like_a_revoked_one_cannot_read_its_upload_job(api):
    old, _ = api.key("uploader", "editor", ("closed",))
    job = upload(api, old, "closed", "北斗计划补充通知.md", "北斗计划补充通知\n第一条 北斗计划联络人为赵六。\n")
    assert job["state"] == "done" and job["owner"] == principal_of(api.container, old).id
    new, _ = api.key("uploader", "editor", ("open",))          # revokes the old key, takes its name
    assert api.client.get(f"/api/v1/jobs/{job['id']}", headers=api.h(old)).status_code == 401
    r = api.client.get(f"/api/v1/jobs/{job['id']}", headers=api.h(new))
    assert r.status_code == 404 and "赵六" not in r.text and "北斗" not in r.text
    listed = api.client.get("/api/v1/jobs", headers=api.h(new)).json()
    assert job["id"] not in [j["id"] for j in listed]
    admin, _ = api.key("job-admin", "admin", ("*",))
    assert api.client.get(f"/api/v1/jobs/{job['id']}", headers=api.h(admin)).status_code == 200


def test_another_principals_job_id_answers_404_like_a_missing_one(api):
    editor, _ = api.key("guess-editor", "editor", ("open",))
    reader, _ = api.key("guess-reader", "reader", ("open",))
    job = upload(api, editor, "open", "开放目录说明.md", "开放目录说明\n第一条 开放目录由数据局发布。\n")
    theirs = api.client.get(f"/api/v1/jobs/{job['id']}", headers=api.h(reader))
    missing = api.client.get("/api/v1/jobs/job_0123456789abcdef", headers=api.h(reader))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"].replace(job["id"], "X") == missing.json()["detail"].replace(
        "job_0123456789abcdef", "X")


def test_job_rows_owned_by_a_name_stay_hidden_from_a_key_with_that_name(tmp_path):
    db = tmp_path / "jobs.sqlite3"
    conn = open_db(db, "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
                       "created_at TEXT NOT NULL, data TEXT NOT NULL);")
    row = {"id": "job_legacy", "kind": "upload", "kb": "closed", "owner": "reader", "state": "done",
           "created_at": "2025-01-01T00:00:00+00:00", "files": ["内部.md"], "results": [], "ok": True}
    conn.execute("INSERT INTO jobs VALUES (?,?,?,?)", ("job_legacy", "reader", row["created_at"], json.dumps(row)))
    conn.close()
    jobs = JobManager(path=db)
    assert jobs.get("job_legacy").owner == LEGACY_OWNER + "reader"
    for who in (Principal("reader", id="reader"), Principal("reader", id="k_12345678")):
        assert jobs.list(who.id) == []
    assert [j.id for j in jobs.list()] == ["job_legacy"]                            # an admin still sees it
    assert JobManager(path=db).get("job_legacy").owner == LEGACY_OWNER + "reader"   # stable across restarts
