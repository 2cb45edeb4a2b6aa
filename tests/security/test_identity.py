"""Identity and sessions (issue #14): a principal is its key's id, never the key's reusable name — jobs, feedback,
audit rows and UI sessions are tied to the id, so a new key that takes a revoked key's name inherits nothing.
Each test is one case of the adversarial campaign (docs/security/identity.md)."""
from __future__ import annotations

import json

import pytest
from identity_fixtures import QUESTION, Api, api, build, document, principal_of, refused  # noqa: F401 - api

from assistant.services.access import LOCAL_ADMIN, Principal
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
    conn = open_db(db, "jobs")
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
    api.container.knowledge_bases.ingest_documents("late", [document("late-1", "较早的通知", "较早的通知\n第一条 试行。\n")],
                                                   principal=LOCAL_ADMIN)
    secret, _ = api.key("uirefresh", "reader", ("late",))
    p = ui.log_in(secret)
    assert "较早的通知" in str(ui.call("ui.knowledge.refresh_all", p, "late"))
    api.container.api_keys.revoke("uirefresh")
    api.container.knowledge_bases.ingest_documents("late", [document("late-2", "撤销后上传的通知",
                                                                     "撤销后上传的通知\n第一条 内部。\n")], principal=LOCAL_ADMIN)
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
    kbs = api.container.knowledge_bases
    assert kbs.documents("closed", principal=LOCAL_ADMIN) and kbs.documents("open", principal=LOCAL_ADMIN)
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
    ui.call("ui.knowledge.upload", p, "closed", ["x.md"], None, None)
    ui.call("ui.summarize.summarize", p, None, "一、示范市数据局负责编制目录。", "", "brief")
    rows = rows_of(api, p.id)
    seen = [(e["operation"], e["outcome"]) for e in rows]
    for expected in (("ui.login", "ok"), ("ui.knowledge.load_kb", "ok"), ("ui.knowledge.hit_test", "ok"),
                     ("ui.knowledge.hit_test", "rejected"), ("ui.chat.rate_down", "ok"),
                     ("ui.knowledge.upload", "denied"), ("ui.summarize.summarize", "ok")):
        assert expected in seen, expected
    hit = next(e for e in rows if e["operation"] == "ui.knowledge.hit_test" and e["outcome"] == "ok")
    assert hit["kb"] == "open" and hit["question"] == QUESTION and hit["sources"] and hit["method"] == "UI"
    asked = next(e for e in rows if e["operation"] == "ui.chat.ask")
    assert asked["outcome"] == ("refused" if answer.refused else "ok")
    assert asked["answer_id"] == answer.answer_id and asked["question"] == QUESTION and asked["latency_ms"] > 0
    assert not [e for e in api.container.audit.tail(400) if e["principal"] == "uiaudit"]   # never the name


# -- feedback: only the asker (or an admin), known ids only, one rating per rater ------------------------------------

def ask(api: Api, secret: str) -> str:
    r = api.client.post("/api/v1/ask", headers=api.h(secret), json={"question": QUESTION, "kb": "open"})
    assert r.status_code == 200, r.text
    return r.json()["answer_id"]


def rate(api: Api, secret: str, answer_id: str, rating: str = "up", comment: str = ""):
    return api.client.post("/api/v1/feedback", headers=api.h(secret),
                           json={"answer_id": answer_id, "rating": rating, "comment": comment})


def exported(api: Api, answer_id: str) -> list[dict]:
    admin, _ = api.key("fb-export", "admin", ("*",))
    r = api.client.get("/api/v1/feedback/export", headers=api.h(admin))
    assert r.status_code == 200
    return [x for x in map(json.loads, r.text.splitlines()) if x["answer_id"] == answer_id]


def test_only_the_asker_or_an_admin_may_rate_an_answer(api):
    asker, _ = api.key("fb-asker", "reader", ("open",))
    other, _ = api.key("fb-other", "reader", ("open",))
    admin, _ = api.key("fb-admin", "admin", ("*",))
    answer_id = ask(api, asker)
    theirs, missing = rate(api, other, answer_id), rate(api, other, "no-such-answer")
    assert theirs.status_code == missing.status_code == 404          # someone else's id reads as unknown
    assert rate(api, asker, answer_id).status_code == 201
    assert rate(api, admin, answer_id, "down").status_code == 201
    rows = exported(api, answer_id)
    asker_id, admin_id = principal_of(api.container, asker).id, principal_of(api.container, admin).id
    assert sorted(x["principal"] for x in rows) == sorted([asker_id, admin_id])
    assert {x["asked_by"] for x in rows} == {asker_id} and all(x["question"] == QUESTION for x in rows)


def test_an_unknown_answer_id_is_404_and_never_exported_as_the_raters(api):
    rater, _ = api.key("fb-guess", "reader", ("open",))
    assert rate(api, rater, "made-up-answer-1").status_code == 404
    # the feedback request's own audit row names that id; it is not an answer
    assert api.container.audit.find_answer("made-up-answer-1") is None
    assert exported(api, "made-up-answer-1") == []


def test_a_new_key_with_the_askers_name_cannot_rate_the_old_answer(api):
    old, _ = api.key("fb-reused", "reader", ("open",))
    answer_id = ask(api, old)
    new, _ = api.key("fb-reused", "reader", ("open",))
    assert rate(api, new, answer_id).status_code == 404


def test_one_rater_flooding_one_answer_keeps_one_rating(api):
    asker, _ = api.key("fb-flood", "reader", ("open",))
    answer_id = ask(api, asker)
    for i in range(20):
        assert rate(api, asker, answer_id, "up" if i % 2 else "down", f"第{i}次").status_code == 201
    rows = exported(api, answer_id)
    assert len(rows) == 1 and rows[0]["rating"] == "up" and rows[0]["comment"] == "第19次"


def test_the_ui_rates_only_its_own_sessions_answers(api, ui):
    asker, _ = api.key("fb-ui-asker", "reader", ("open",))
    other, _ = api.key("fb-ui-other", "reader", ("open",))
    p, q = ui.log_in(asker), ui.log_in(other)
    last = ui.call("ui.chat.ask", p, QUESTION, [], [], ["open"], ["现行有效"], None, "", "")[-1][4]
    assert refused(ui.call("ui.chat.rate_up", q, last, ""))                # another principal holding the state
    assert "已记录" in ui.call("ui.chat.rate_up", p, last, "准确")[0]
    assert [x["principal"] for x in exported(api, last["answer"].answer_id)] == [p.id]


# -- keys, API replay, login throttle --------------------------------------------------------------------------------

def test_a_key_name_cannot_pose_as_another_keys_id(api):
    _, victim = api.key("id-victim", "admin", ("*",))
    with pytest.raises(ValueError, match="key id"):
        api.container.api_keys.create(victim["id"], "reader", ["open"])
    assert api.container.api_keys.revoke(victim["id"]) == 1             # `keys revoke <id>` hits that key only


def test_a_revoked_key_is_refused_on_every_api_route(api):
    import re
    secret, _ = api.key("replay", "admin", ("*",))
    api.key("replay", "admin", ("*",))                                   # revoked; its name taken again
    paths = {p: ops for p, ops in api.client.app.openapi()["paths"].items() if p.startswith(("/api/", "/v1/"))}
    assert len(paths) >= 20
    for path, ops in paths.items():
        for method in ops:
            r = api.client.request(method, re.sub(r"\{[^}]+\}", "x", path), headers=api.h(secret), json={})
            assert r.status_code == 401, (method, path, r.status_code)


def test_many_client_addresses_cannot_bypass_the_login_throttle(api):
    from identity_fixtures import Clock
    good, _ = api.key("throttled", "reader", ("open",))
    clock = Clock()
    login = Login(api.container, clock=clock)
    login.throttle = Throttle(max_failures=5, window_s=60, max_total=20, clock=clock)
    for i in range(20):                                                  # one guess from each of 20 addresses
        with pytest.raises(LoginError, match="无效"):
            login.with_key(f"gak_guess{i}", f"10.0.{i}.1")
    with pytest.raises(LoginError, match="次数过多"):
        login.with_key(good, "10.9.9.9")                                 # a fresh address waits too
    clock.advance(60)
    assert login.with_key(good, "10.9.9.9").name == "throttled"


# -- what the UI renders: HTML from documents, metadata and key names is escaped -------------------------------------

XSS = "<img src=x onerror=alert(1)>"


def test_html_in_titles_metadata_answers_and_names_is_escaped(api, ui):
    import gradio as gr

    from ingest.loaders import SourceDocument
    from ui.pages.drafting import render_draft_sources
    api.container.knowledge_bases.create("xss", XSS, principal=LOCAL_ADMIN)
    doc = SourceDocument(doc_id="xss-1", title=f"{XSS}开放通知", source="xss.md",
                         text=f"{XSS}开放通知\n第一条 公共数据开放目录每年更新一次<script>alert(2)</script>。\n",
                         metadata={"status": "现行有效", "agency": "<b onmouseover=alert(3)>数据局</b>",
                                   "doc_number": "<svg onload=alert(4)>"})
    assert api.container.knowledge_bases.ingest_documents("xss", [doc], principal=LOCAL_ADMIN).ok
    secret, _ = api.key(f"{XSS}管理员", "admin", ("*",))
    do_key = next(f for f in ui.blocks.fns.values() if f.name == "do_key")
    login_out = do_key.fn(secret, None)
    p = login_out[0]
    steps = ui.call("ui.chat.ask", p, QUESTION, [], [], ["xss"], ["现行有效"], None, "", "")
    citations = [{"n": 1, "label": doc.title, "title": doc.title, "text": doc.text, "metadata": doc.metadata,
                  "cited": True}]
    panels = {"badge": login_out[3], "hits": ui.call("ui.knowledge.hit_test", p, "xss", QUESTION, "hybrid", 5, True),
              "chunks": ui.call("ui.knowledge.show_chunks", p, "xss", "xss-1"),
              "kb info": ui.call("ui.knowledge.load_kb", p, "xss")[0], "sources": steps[-1][2],
              "draft sources": render_draft_sources(citations)}
    for where, html in panels.items():
        assert "&lt;img" in html or "&lt;svg" in html or "&lt;b" in html or where == "kb info", where
        for raw in ("<img", "<script", "<svg", "<b onmouseover"):
            assert raw not in html, (where, raw)
    # what is not built here is rendered by components that sanitize (chat answers) or show text (tables)
    for block in ui.blocks.blocks.values():
        if isinstance(block, (gr.Chatbot, gr.Markdown)):
            assert block.sanitize_html, block
        if isinstance(block, gr.Dataframe):
            assert set(block.datatype if isinstance(block.datatype, list) else [block.datatype]) <= {"str", "number"}


def test_evaluation_reports_over_a_kb_are_shown_only_to_its_readers(api, ui, tmp_path, monkeypatch):
    for name, kb in (("over-open", "open"), ("over-closed", "closed"), ("no-summary", None)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "report.md").write_text(f"# {name}\n北斗计划预算为八百万元\n", encoding="utf-8")
        if kb:
            summary = {"suites": {"custom": {"run": {"options": {"kb": kb}}}}}
            (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    monkeypatch.setenv("GOV_ASSISTANT_EVAL_DIR", str(tmp_path))
    reader, _ = api.key("eval-reader", "reader", ("open",))
    admin, _ = api.key("eval-admin", "admin", ("*",))
    p, a = ui.log_in(reader), ui.log_in(admin)

    def listed(principal):
        return {v.rsplit("/", 1)[-1] for _, v in ui.call("ui.evaluation.listing", principal, None)[0]["choices"]}
    assert listed(p) == {"over-open"}
    assert listed(a) == {"over-open", "over-closed", "no-summary"}
    shown = ui.call("ui.evaluation.show_report", p, str(tmp_path / "over-closed"))
    assert "八百万元" not in str(shown) and rows_of(api, p.id)[-1]["outcome"] == "rejected"


def test_answers_from_every_answering_route_can_be_rated_by_their_asker(api):
    # audit.ANSWER_OPERATIONS names the routes whose rows record answers: a renamed route must show up here
    asker, _ = api.key("fb-routes", "reader", ("open",))
    r = api.client.post("/v1/chat/completions", headers=api.h(asker),
                        json={"model": "open", "messages": [{"role": "user", "content": QUESTION}]})
    assert r.status_code == 200, r.text
    for answer_id in (ask(api, asker), r.json()["answer_id"]):
        assert rate(api, asker, answer_id).status_code == 201
