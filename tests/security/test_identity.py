"""Identity and sessions (issue #14): a principal is its key's id, never the key's reusable name — jobs, feedback,
audit rows and UI sessions are tied to the id, so a new key that takes a revoked key's name inherits nothing.
Each test is one case of the adversarial campaign (docs/security/identity.md)."""
from __future__ import annotations

import json

import pytest
from identity_fixtures import QUESTION, Api, api, build, document, principal_of, refused  # noqa: F401 - api

from assistant.services.access import Principal
from assistant.services.jobs import LEGACY_OWNER, JobManager
from assistant.sqlite import open_db
from ui.auth import RECHECK_S, Login, LoginError, Throttle

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")   # gr.Warning outside a request warns


@pytest.fixture(scope="module")
def ui(api):
    return build(api.container)


def rows_of(api: Api, principal_id: str) -> list[dict]:
    return [e for e in api.container.audit.tail(400) if e["principal"] == principal_id]


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


# -- UI sessions: tied to the key id, re-checked by every handler ----------------------------------------------------

def test_a_ui_session_ends_when_its_key_is_revoked_even_if_a_new_key_takes_its_name(api, ui):
    old, _ = api.key("uirot", "reader", ("open",))
    p = ui.log_in(old)
    assert "hit-table" in ui.call("ui.knowledge.hit_test", p, "open", QUESTION, "hybrid", 5, False)
    new, _ = api.key("uirot", "reader", ("open",))            # same name, role and KBs; another id
    r = api.client.post("/api/v1/search", headers=api.h(old), json={"query": QUESTION, "kb": "open"})
    assert r.status_code == 401
    ui.clock.advance(RECHECK_S)                               # the longest a revocation may go unseen
    assert refused(ui.call("ui.knowledge.hit_test", p, "open", QUESTION, "hybrid", 5, False))
    assert rows_of(api, p.id)[-1]["outcome"] == "denied"
    with pytest.raises(LoginError):
        ui.login.with_key(old)
    fresh = ui.log_in(new)
    assert fresh.id != p.id and "hit-table" in ui.call("ui.knowledge.hit_test", fresh, "open", QUESTION,
                                                       "hybrid", 5, False)


def test_after_a_plain_revoke_no_handler_shows_documents_added_later(api, ui):
    api.container.knowledge_bases.ingest_documents("late", [document("late-1", "较早的通知", "较早的通知\n第一条 试行。\n")])
    secret, _ = api.key("uirefresh", "reader", ("late",))
    p = ui.log_in(secret)
    assert "较早的通知" in str(ui.call("ui.knowledge.refresh_all", p, "late"))
    api.container.api_keys.revoke("uirefresh")
    api.container.knowledge_bases.ingest_documents("late", [document("late-2", "撤销后上传的通知",
                                                                     "撤销后上传的通知\n第一条 内部。\n")])
    ui.clock.advance(RECHECK_S)
    for operation, args in (("ui.knowledge.refresh_all", ("late",)), ("ui.knowledge.load_kb", ("late",)),
                            ("ui.chat.on_kbs_change", (["late"],)), ("ui.drafting.on_kbs", (["late"],)),
                            ("ui.knowledge.list_kbs", ())):
        out = ui.call(operation, p, *args)
        assert refused(out) and "撤销后上传的通知" not in str(out), operation


def test_every_registered_handler_that_takes_the_session_refuses_a_revoked_one(api, ui):
    secret, _ = api.key("uienum", "admin", ("*",))
    p = ui.log_in(secret)
    api.container.api_keys.revoke("uienum")
    ui.clock.advance(RECHECK_S)
    fns = list(ui.blocks.fns.values())
    state = next(f.inputs[0] for f in fns if getattr(f.fn, "ui_session", False))
    taking = [f for f in fns if any(x is state for x in f.inputs)]
    for f in taking:
        assert f.inputs[0] is state and getattr(f.fn, "ui_session", False), f.name
        out = f.fn(p, *[None] * (len(f.inputs) - 1))
        out = list(out) if hasattr(out, "__next__") else out
        last = rows_of(api, p.id)[-1]
        assert refused(out) and last["operation"] == f.fn.ui_operation and last["outcome"] == "denied", f.name
    operations = {f.fn.ui_operation for f in taking}
    assert {"ui.chat.ask", "ui.chat.rate_up", "ui.chat.rate_down", "ui.chat.on_kbs_change", "ui.chat.refresh_kbs",
            "ui.knowledge.load_kb", "ui.knowledge.refresh_all", "ui.knowledge.create_kb", "ui.knowledge.upload",
            "ui.knowledge.show_chunks", "ui.knowledge.reindex", "ui.knowledge.delete_document",
            "ui.knowledge.hit_test", "ui.knowledge.list_kbs", "ui.drafting.draft", "ui.drafting.polish",
            "ui.drafting.extract_actions", "ui.drafting.on_kbs", "ui.summarize.summarize", "ui.evaluation.listing",
            "ui.evaluation.show_report", "ui.app.logout_session"} <= operations


def test_a_forged_or_missing_session_principal_is_refused(api, ui):
    secret, _ = api.key("uiforge", "admin", ("*",))
    lookalike = principal_of(api.container, secret)           # an active key's exact principal, never logged in
    for forged in (lookalike, Principal("local-cli", "admin", ("*",), id="local-cli"), None, {"role": "admin"}):
        assert refused(ui.call("ui.knowledge.refresh_all", forged, None)), forged
    assert refused(ui.call("ui.chat.ask", None, QUESTION, [], [], ["open"], ["现行有效"], None, "", ""))


def test_a_downgraded_key_ends_the_open_session_and_the_new_one_has_the_new_rights(api, ui):
    old, _ = api.key("uidown", "editor", ("open", "closed"))
    p = ui.log_in(old)
    assert "hit-table" in ui.call("ui.knowledge.hit_test", p, "closed", "北斗计划预算", "hybrid", 5, False)
    new, _ = api.key("uidown", "reader", ("open",))           # role downgraded and a KB taken away
    ui.clock.advance(RECHECK_S)
    assert refused(ui.call("ui.knowledge.hit_test", p, "closed", "北斗计划预算", "hybrid", 5, False))
    assert refused(ui.call("ui.knowledge.delete_document", p, "closed", "closed-1", True))
    q = ui.log_in(new)
    assert refused(ui.call("ui.knowledge.hit_test", q, "closed", "北斗计划预算", "hybrid", 5, False))
    assert refused(ui.call("ui.knowledge.delete_document", q, "open", "open-1", True))
    assert api.container.knowledge_bases.documents("closed") and api.container.knowledge_bases.documents("open")
    assert [e["outcome"] for e in rows_of(api, q.id)[-2:]] == ["denied", "denied"]


def test_a_key_created_after_the_last_recheck_works_at_once(api, ui):
    first, _ = api.key("uifirst", "reader", ("open",))
    p = ui.log_in(first)
    assert "hit-table" in ui.call("ui.knowledge.hit_test", p, "open", QUESTION, "hybrid", 5, False)  # list read
    second, _ = api.key("uisecond", "reader", ("open",))     # after it, within the recheck interval
    q = ui.log_in(second)
    assert "hit-table" in ui.call("ui.knowledge.hit_test", q, "open", QUESTION, "hybrid", 5, False)


# -- UI audit: every action, by principal id -------------------------------------------------------------------------

def test_ui_actions_are_audited_with_the_principal_id(api, ui):
    secret, _ = api.key("uiaudit", "editor", ("open",))
    p = ui.log_in(secret)
    ui.call("ui.knowledge.load_kb", p, "open")
    ui.call("ui.knowledge.hit_test", p, "open", QUESTION, "hybrid", 3, False)
    ui.call("ui.knowledge.hit_test", p, "open", "", "hybrid", 3, False)
    steps = ui.call("ui.chat.ask", p, QUESTION, [], [], ["open"], ["现行有效"], None, "", "")
    answer = steps[-1][4]["answer"]
    ui.call("ui.chat.rate_down", p, steps[-1][4], "不够具体")
    ui.call("ui.knowledge.upload", p, "closed", ["x.md"], None)
    ui.call("ui.summarize.summarize", p, None, "一、示范市数据局负责编制目录。", "", "brief")
    rows = rows_of(api, p.id)
    seen = [(e["operation"], e["outcome"]) for e in rows]
    for expected in (("ui.login", "ok"), ("ui.knowledge.load_kb", "ok"), ("ui.knowledge.hit_test", "ok"),
                     ("ui.knowledge.hit_test", "rejected"), ("ui.chat.ask", "ok"), ("ui.chat.rate_down", "ok"),
                     ("ui.knowledge.upload", "denied"), ("ui.summarize.summarize", "ok")):
        assert expected in seen, expected
    hit = next(e for e in rows if e["operation"] == "ui.knowledge.hit_test" and e["outcome"] == "ok")
    assert hit["kb"] == "open" and hit["question"] == QUESTION and hit["sources"] and hit["method"] == "UI"
    asked = next(e for e in rows if e["operation"] == "ui.chat.ask")
    assert asked["answer_id"] == answer.answer_id and asked["question"] == QUESTION and asked["latency_ms"] > 0
    assert not [e for e in api.container.audit.tail(400) if e["principal"] == "uiaudit"]   # never the name
