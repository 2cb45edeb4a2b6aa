"""The UI's pieces without a browser: login, rendering (escaping, highlighting, citations), filters, upload names,
summaries, report discovery, error handling, and the mounted app serving no external resource."""
from __future__ import annotations

import os
import time

import gradio as gr
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.answering import Answer, Citation
from assistant.filters import FilterError
from assistant.services.access import Principal
from ui.auth import Login, LoginError, Throttle
from ui.common import friendly, guard, highlight
from ui.pages.chat import build_filters, render_sources, section_of, source_label, verification_note
from ui.pages.evaluation import charts_html, find_reports, resolve_report
from ui.pages.knowledge import message_zh, render_hits, safe_name
from ui.pages.summarize import to_markdown

READER = Principal("alice", "reader", ("samples",), id="k_a11ce000", levels=("公开", "内部"))


class FakeKeys:
    revoked = False

    def authenticate(self, secret):
        if secret == "gak_good" and not self.revoked:
            return READER
        raise PermissionError("invalid or revoked API key")

    def list(self):
        return [] if self.revoked else [{"id": "k_a11ce000", "name": "alice", "role": "reader", "kbs": ["samples"],
                                         "departments": []}]


class FakeContainer:
    api_keys = FakeKeys()


# -- login ---------------------------------------------------------------------------------------------------------

def test_login_with_an_api_key_maps_to_the_keys_principal():
    login = Login(FakeContainer())
    assert login.with_key(" gak_good ", "10.0.0.1") == READER
    with pytest.raises(LoginError, match="无效或已被吊销"):
        login.with_key("gak_bad", "10.0.0.1")
    with pytest.raises(LoginError, match="请输入"):
        login.with_key("", "10.0.0.1")


def test_a_revoked_key_ends_the_ui_session():
    container = FakeContainer()
    container.api_keys = FakeKeys()
    login = Login(container, recheck_s=0)
    p = login.with_key("gak_good")
    assert login.still_valid(p)
    container.api_keys.revoked = True
    assert not login.still_valid(p)
    assert not Login(container).still_valid(Principal("bob", "admin", ("*",)))   # not a session it started


def test_password_login_only_with_a_resolver():
    login = Login(FakeContainer())
    assert not login.password_enabled
    with pytest.raises(LoginError, match="未启用用户名密码登录"):
        login.with_password("alice", "pw")
    users = {("alice", "s3cret"): READER}
    login = Login(FakeContainer(), principal_resolver=lambda u, p: users.get((u, p)))
    assert login.password_enabled
    assert login.with_password("alice", "s3cret") == READER
    with pytest.raises(LoginError, match="用户名或密码错误"):
        login.with_password("alice", "wrong")


def test_no_key_store_means_a_clear_message():
    with pytest.raises(LoginError, match="尚未启用 API 密钥登录"):
        Login(object()).with_key("gak_good")


def test_failed_logins_are_throttled_per_client():
    login = Login(FakeContainer())
    login.throttle = Throttle(max_failures=3, window_s=60)
    for _ in range(3):
        with pytest.raises(LoginError, match="无效"):
            login.with_key("gak_bad", "10.0.0.9")
    with pytest.raises(LoginError, match="次数过多"):
        login.with_key("gak_good", "10.0.0.9")            # even the right key waits
    assert login.with_key("gak_good", "10.0.0.10") == READER   # another client is not affected


def test_throttle_window_expires():
    t = Throttle(max_failures=1, window_s=0.05)
    t.failed("c")
    with pytest.raises(LoginError):
        t.check("c")
    time.sleep(0.06)
    t.check("c")


# -- rendering -----------------------------------------------------------------------------------------------------

def test_highlight_escapes_and_marks_longest_terms_first():
    out = highlight("<b>食品经营许可</b>与食品", {"食品", "食品经营许可"})
    assert out.startswith("&lt;b&gt;<mark>食品经营许可</mark>&lt;/b&gt;与<mark>食品</mark>")
    assert highlight("a<b", set()) == "a&lt;b"


def _citation(n, meta, text="正文", cited=False):
    return Citation(n, f"d{n}", f"c{n}", "samples", meta.get("title", ""), "", text, meta, cited)


def test_sources_panel_shows_labels_status_and_puts_cited_first():
    law = {"title": "中华人民共和国数据安全法", "law": "中华人民共和国数据安全法", "article": "第二十一条",
           "agency": "全国人民代表大会常务委员会", "date": "2021-06-10", "status": "现行有效",
           "heading": "中华人民共和国数据安全法 第三章 数据安全制度 第二十一条"}
    doc = {"title": "关于推进公共数据开放共享的通知", "doc_number": "示政办发〔2025〕12号", "agency": "示范市人民政府办公厅",
           "date": "2025-03-18", "status": "已废止", "heading": "《关于推进公共数据开放共享的通知》二、主要任务"}
    html = render_sources([_citation(1, doc, "<script>alert(1)</script>公共数据"),
                           _citation(2, law, "国家建立数据分类分级保护制度", cited=True)], query="数据分类分级保护制度")
    assert html.index('data-n="2"') < html.index('data-n="1"')         # the cited one first, number kept
    assert "《中华人民共和国数据安全法》第二十一条" in html and "文号：示政办发〔2025〕12号" in html
    assert "已废止" in html and "现行有效" in html and "已引用" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<mark>" in html
    assert "二、主要任务" in html and "》二、主要任务" not in html          # the title is not repeated


def test_an_amended_text_shows_its_warning_on_its_card():
    meta = {"title": "中华人民共和国刑法", "law": "中华人民共和国刑法", "article": "第二百六十四条", "status": "已被修改"}
    amended = Citation(1, "d1", "c1", "samples", "中华人民共和国刑法", "", "盗窃", meta, True,
                       notice="此文本此后已被修改，请以最新修正文本为准")
    html = render_sources([amended, _citation(2, {"title": "通知", "status": "现行有效"})])
    assert html.count('class="src-notice"') == 1 and "此文本此后已被修改，请以最新修正文本为准" in html
    assert html.index("src-notice") < html.index('data-n="2"')


def test_sources_panel_empty_and_refusal_states():
    assert "提问后" in render_sources([])
    refusal = Answer("q", "知识库中未找到相关依据", True, [])
    assert "没有找到可以作为依据的内容" in render_sources([], answer=refusal)


def _check(text, cites, unsupported=(), kinds=()):
    return {"text": text, "cites": cites, "supported": not unsupported, "unsupported": list(unsupported),
            "kinds": list(kinds)}


DOC = {"title": "示范市财政预算报告", "agency": "示范市财政局", "date": "2025-01-10", "status": "现行有效"}


def test_sources_panel_shows_the_streaming_status():
    html = render_sources([_citation(1, DOC)], query="预算", status="检索到 1 条依据")
    assert "检索到 1 条依据" in html and "共 1 条" not in html and 'data-n="1"' in html
    assert "检索到 3 条相关资料" in render_sources([], status="检索到 3 条相关资料")


def test_sources_panel_notes_removed_sentences_and_their_missing_atoms():
    v = {"sentences": [_check("预算由财政局编制[1]。", [1]),
                       _check("预算总额是10亿元[1]。", [1], ["10亿元"], ["amount"])],
         "answerability": 0.95, "missing_constraints": [], "reason": "", "removed": 1}
    answer = Answer("q", "预算由财政局编制[1]。", False, [_citation(1, DOC, "预算由财政局编制。", cited=True)],
                    timings={"total_ms": 10}, verification=v)
    assert verification_note(v) == "已删除 1 句：依据中未找到「10亿元」"
    html = render_sources(answer.citations, "预算", answer=answer)
    assert "已删除 1 句：依据中未找到「10亿元」" in html and "总计" in html
    assert '<del class="removed-sentence">预算总额是10亿元。</del>' in html      # struck through, markers dropped
    assert "已引用" in html and 'data-removed="1"' in html
    clean = Answer("q", "a[1]", False, answer.citations, verification={**v, "sentences": v["sentences"][:1],
                                                                        "removed": 0})
    assert "已删除" not in render_sources(clean.citations, answer=clean) and verification_note({}) == ""


def test_refusal_lists_related_passages_never_as_cited():
    related = [_citation(1, DOC, "预算由财政局编制。", cited=True), _citation(2, {"title": "<b>另一份</b>"})]
    v = {"sentences": [_check("预算总额是10亿元[1]。", [1], ["10亿元"], ["amount"])], "answerability": 0.9,
         "missing_constraints": [], "reason": "unsupported", "removed": 1}
    answer = Answer("q", "知识库中未找到能够支持回答的依据", True, [], timings={"total_ms": 5}, verification=v,
                    related=related)
    html = render_sources([], "预算", answer=answer)
    assert "相关但未直接回答" in html and html.count('data-related="true"') == 2
    assert "已引用" not in html and "相关·未作为依据" in html and "&lt;b&gt;另一份" in html
    assert "已删除 1 句：依据中未找到「10亿元」" in html and "含有依据中没有的内容" in html
    assert "[1]" not in html.split("related-head")[1]                     # related cards carry no citation number


def test_refusal_names_the_missing_constraint_and_reason():
    v = {"sentences": [], "answerability": None, "reason": "missing_constraint", "removed": 0,
         "missing_constraints": ["深圳市政务服务数据管理局", "2024年"]}
    answer = Answer("q", "未找到", True, [], verification=v, related=[_citation(1, DOC)])
    html = render_sources([], answer=answer)
    assert "「深圳市政务服务数据管理局」、「2024年」在知识库资料中没有出现" in html and "相关但未直接回答" in html
    off_topic = Answer("q", "未找到", True, [], verification={**v, "reason": "no_evidence"})
    assert "「2024年」在知识库资料中没有出现" in render_sources([], answer=off_topic)
    unanswerable = Answer("q", "未找到", True, [], verification={**v, "reason": "unanswerable",
                                                                "missing_constraints": []})
    html = render_sources([], answer=unanswerable)
    assert "没有直接给出所问的内容" in html and "相关但未直接回答" not in html


def test_removed_wording_and_the_new_refusal_reasons_are_explained():
    v = {"sentences": [{**_check("上海公安通过设置检查站严格检查车辆[1]。", [1], [], ["content"]), "supported": False,
                        "support": 0.07}],
         "answerability": None, "missing_constraints": [], "reason": "unsupported", "removed": 1}
    assert verification_note(v) == "已删除 1 句（其表述在依据中找不到）"
    kind = Answer("q", "未找到", True, [], verification={**v, "sentences": [], "reason": "missing_answer_kind"})
    assert "金额、期限、日期" in render_sources([], answer=kind)
    injected = Answer("q", "无法作答", True, [], verification={**v, "sentences": [], "reason": "injection"})
    assert "改变或泄露系统指令" in render_sources([], answer=injected)
    held = {**_check("《人世间》的编剧是丁勇岱[1]。", [1], [], []), "anchor": 0.5, "unanchored_terms": ["编剧"]}
    unanchored = Answer("q", "未找到", True, [], verification={**v, "sentences": [held], "reason": "unanchored"})
    html = render_sources([], answer=unanchored)
    assert "没有提到问题中的「编剧」" in html


def test_source_label_and_section():
    assert source_label({"title": "T"}) == ""
    assert section_of({"title": "T", "heading": "T > 一、总则"}) == "一、总则"


def test_filters_from_the_form():
    f = build_filters(["现行有效", "已废止"], " 示范市公安局 ", "2024-01", "")
    assert f.status == ["现行有效", "已废止"] and f.agency == "示范市公安局" and f.date_from == "2024-01"
    assert build_filters([], None, None, None).status == ["*"]      # nothing ticked: any validity
    # ticked as the form starts (retrieval.default_status): the default validity, with its newest-amended rule
    assert build_filters(["现行有效"], None, None, None, ["现行有效"]).status is None
    assert build_filters(["现行有效", "已废止"], None, None, None, ["现行有效"]).status == ["现行有效", "已废止"]
    assert build_filters([], None, None, None, ["现行有效"]).status == ["*"]
    with pytest.raises(FilterError):
        build_filters(["现行有效"], None, "去年", None)


def test_hit_table_explains_both_retrievers():
    from assistant.retrieval import Hit
    h = Hit("c1", "d1", "samples", "周六窗口服务时间延长", {"title": "通知", "status": "现行有效"}, score=0.03,
            bm25_score=3.2, bm25_rank=1, dense_score=None, dense_rank=None, coverage=1.0)
    html = render_hits([h], "周六窗口", "hybrid")
    assert "BM25 第 1 名" in html and "—" in html and "RRF" in html
    assert "没有检索到" in render_hits([], "x", "bm25")


# -- uploads, summaries, reports, errors ---------------------------------------------------------------------------

def test_upload_names_and_messages():
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\x\\报告.docx") == "报告.docx"
    assert safe_name("..") == "upload"
    assert message_zh("the file is empty") == "文件为空"
    assert message_zh("cannot parse .pdf file (damaged or not a PDF): EOF").startswith("无法解析该 PDF")
    assert message_zh("something new") == "something new"


def test_summary_markdown_from_the_service_record():
    md = to_markdown({"title": "关于X的通知", "doc_number": "示政办发〔2025〕12号", "agency": "示范市人民政府办公厅",
                      "markdown": "**要点**\n- 一 〔S2〕", "sections": [{"id": "S2", "heading": "一、目标"}],
                      "ai_label": "【人工智能生成合成内容】……"})
    assert md.startswith("# 关于X的通知") and "示政办发〔2025〕12号 · 示范市人民政府办公厅" in md
    assert "S2 一、目标" in md and md.rstrip().endswith("【人工智能生成合成内容】……")
    generic = to_markdown({"points": ["甲", {"text": "乙", "sources": ["S1"]}], "units": ["市数据局"]}, "标题")
    assert "## 要点" in generic and "- 乙[S1]" in generic and "## 责任单位" in generic and "人工智能" in generic


def test_reports_newest_first_and_confined_to_their_roots(tmp_path):
    old, new = tmp_path / "eval" / "old", tmp_path / "eval" / "sub" / "new"
    for i, d in enumerate((old, new)):
        d.mkdir(parents=True)
        (d / "report.md").write_text("# r", encoding="utf-8")
        os.utime(d / "report.md", (1000 + i, 1000 + i))
    (new / "chart.png").write_bytes(b"\x89PNG\r\n")
    roots = [tmp_path / "eval", tmp_path / "missing"]
    assert find_reports(roots) == [new.resolve(), old.resolve()]
    assert resolve_report(str(new), roots) == new.resolve()
    assert resolve_report(str(tmp_path), roots) is None
    assert resolve_report(str(new / ".." / ".." / ".."), roots) is None
    assert "data:image/png;base64," in charts_html([new / "chart.png"])


def test_friendly_messages():
    assert friendly(ValueError("knowledge base 'x' does not exist")) == "知识库 x 不存在"
    assert friendly(PermissionError("no")) == "no"
    from assistant.services.access import AccessDenied
    assert friendly(AccessDenied("alice may not read")).startswith("无权限")


@pytest.mark.filterwarnings("ignore::UserWarning")      # gr.Warning outside a request warns instead of toasting
def test_guard_turns_a_gr_error_into_skipped_outputs():
    def handler(x):
        raise gr.Error("请先登录。")
    out = guard(handler, 2)(1)
    assert isinstance(out, tuple) and len(out) == 2

    def stream(x):
        yield 1
        raise gr.Error("坏了")
    assert len(list(guard(stream, 1)(1))) == 2


# -- mounted ---------------------------------------------------------------------------------------------------------

def test_mounted_ui_loads_without_external_resources(container):
    from ui.app import mount_ui
    app = mount_ui(FastAPI(), container)
    client = TestClient(app)
    page = client.get("/ui/")
    assert page.status_code == 200
    config = client.get("/ui/config")
    assert config.status_code == 200
    body = page.text + config.text
    for host in ("fonts.googleapis.com", "fonts.gstatic.com", "cdn.jsdelivr.net", "unpkg.com", "gradio.live"):
        assert host not in body
    theme_css = client.get("/ui/theme.css")
    assert theme_css.status_code == 200 and "googleapis" not in theme_css.text and "system-ui" in theme_css.text
    assert os.environ.get("GRADIO_ANALYTICS_ENABLED") == "False"


class WithoutOptionalServices:
    """A container of a build that has no drafting, summarize or feedback service."""

    def __init__(self, container):
        self._container = container

    def __getattr__(self, name):
        if name in ("drafting", "summarize", "feedback"):
            raise AttributeError(name)
        return getattr(self._container, name)


def test_pages_whose_service_is_missing_say_so(container):
    from ui.app import build_ui
    blocks = build_ui(WithoutOptionalServices(container))
    texts = [str(b.value) for b in blocks.blocks.values() if isinstance(getattr(b, "value", None), str)]
    disabled = [t for t in texts if "功能未启用" in t]
    assert any("公文写作" in t for t in disabled) and any("文件摘要" in t for t in disabled)


def test_a_copy_of_the_cited_passage_is_shown_cited_as_the_same_text():
    from assistant.answering import finalize_answer
    notice = "各相关省份要抓紧将救灾资金拨付到位，及时支持做好农作物重大病虫害防控等农业生产救灾工作，促进当地蔬菜稳产保供。"
    repost = Citation(1, "d1", "c1", "ncp", "财政部通知", "", notice, {"title": "财政部通知"})
    other = Citation(2, "d2", "c2", "ncp", "新闻", "", "一是抓紧拨付救灾资金。" + notice.replace("后", "後"),
                     {"title": "新闻转载"})
    unrelated = Citation(3, "d3", "c3", "ncp", "其他", "", "减免农业信贷担保相关费用，促进解决农业适度规模经营主体融资难问题。",
                         {"title": "其他"})
    text, refused, cites = finalize_answer("各省要抓紧将救灾资金拨付到位[2]。", [repost, other, unrelated])
    assert not refused and text == "各省要抓紧将救灾资金拨付到位[2]。"          # the reply is not rewritten
    assert [(c.cited, c.same_as) for c in cites] == [(True, 2), (True, None), (False, None)]
    html = render_sources(cites)
    assert 'data-same-as="2"' in html and "与[2]同文" in html and html.count("已引用") == 2   # 2 and the summary line
    # short clauses never count as one text
    a = Citation(1, "d1", "c1", "ncp", "t", "", "免征增值税。", {})
    b = Citation(2, "d2", "c2", "ncp", "t", "", "免征增值税。", {})
    assert [c.same_as for c in finalize_answer("免征增值税[1]。", [a, b])[2]] == [None, None]
