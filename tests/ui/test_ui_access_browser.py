"""The 权限 page (issue #17) in headless Chromium: an admin grants a KB to a key's department and marks a document
敏感; the reader's next actions obey both at once (a new login shows the KB; the document leaves its list); each
change is an audit row with the admin's id and the door (UI)."""
from __future__ import annotations

import pytest

from assistant.services.access import LOCAL_ADMIN
from ingest.loaders import SourceDocument
from tests.ui.test_ui_browser import CHROMIUM, CHROMIUM_ARGS, ServerThread, Session, build_app  # noqa: F401

pytestmark = pytest.mark.browser

ADMIN_KEY = "gak_ui_access_admin_0123456789"
READER_KEY = "gak_ui_access_reader_0123456789"
NOTICE = ("示范市数据局关于开展数据资源普查的通知\n各区数据管理部门：\n为摸清公共数据资源底数，决定于2025年8月开展普查。"
          "各区应于2025年9月30日前报送普查结果。\n示范市数据局\n2025年7月1日\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import make_container
    c = make_container(tmp_path_factory.mktemp("ui-access") / "data")
    assert c.knowledge_bases.ingest_documents("census", [SourceDocument(
        "census-1", "示范市数据局关于开展数据资源普查的通知", "census.txt", NOTICE)], principal=LOCAL_ADMIN).ok
    c.api_keys.create("ui-admin", "admin", ["*"], secret=ADMIN_KEY)
    c.api_keys.create("ui-reader", "reader", [], ["办公室"], secret=READER_KEY)    # reads nothing by itself
    with ServerThread(build_app(c)) as s:
        s.container = c
        yield s


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def test_an_admin_grants_a_department_and_classifies_a_document(browser, server):
    c = server.container
    reader = Session(browser, server.url)
    admin = Session(browser, server.url)
    try:
        page = reader.login(READER_KEY)
        reader.tab("tab-access")
        me = page.inner_text("#access-me")
        assert "办公室" in me and "可读知识库" in me and "无" in me and "公开、内部" in me
        assert page.locator("#access-admin").is_hidden()                     # not an admin: no management

        apage = admin.login(ADMIN_KEY)
        admin.tab("tab-access")
        apage.wait_for_selector("#access-admin", state="visible")
        apage.fill("#access-grant-kb textarea", "census")
        apage.fill("#access-grant-subject textarea", "办公室")
        apage.click("#access-grant-add")
        apage.wait_for_function("() => document.querySelector('#access-grants').innerText.includes('办公室')")
        admin.shot("access.png")

        # the reader's session ends (its rights changed); the next login carries the grant
        page = reader.login(READER_KEY)
        reader.tab("tab-kb")
        page.wait_for_function("() => document.querySelector('#kb-docs').innerText.includes('数据资源普查')")
        assert "内部" in page.inner_text("#kb-docs")                         # the 密级 column

        apage.fill("#access-doc-kb textarea", "census")
        apage.fill("#access-doc textarea", "census-1")
        apage.click("#access-level input")
        apage.get_by_role("option", name="敏感").click()
        apage.click("#access-set-level")
        apage.get_by_text("已将文档设为「敏感」").first.wait_for()
        assert c.knowledge_bases.document("census", "census-1", principal=LOCAL_ADMIN)["metadata"][
            "sensitivity"] == "敏感"
        page.click("#kb-refresh")
        page.wait_for_function("() => !document.querySelector('#kb-docs').innerText.includes('数据资源普查')")
    finally:
        reader.close()
        admin.close()
    admin_id = c.api_keys.authenticate(ADMIN_KEY).id
    rows = [e for e in c.audit.tail(200) if e["operation"] in ("access.grant", "access.sensitivity")]
    assert [e["operation"] for e in rows] == ["access.grant", "access.sensitivity"]
    assert all(e["principal"] == admin_id and e["method"] == "UI" for e in rows)
    assert rows[1]["detail"] == {"doc_id": "census-1", "from": "内部", "to": "敏感"}
