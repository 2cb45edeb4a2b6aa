"""Drafting (一网协同): GB/T 9704 element order, validation, ACL, grounding; polishing; action-item extraction.
Unit profile: the scripted LLM (replies queued per test) and the hashing embedder."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from assistant.demo import sample_documents
from assistant.prompts import load_prompt
from assistant.services.access import LOCAL_ADMIN, AccessDenied, Principal
from assistant.services.drafting import DOC_TYPES, chinese_date
from assistant.settings import PROJECT_ROOT
from conftest import make_container

NOTICE = (PROJECT_ROOT / "samples" / "docs" / "示范市人民政府办公厅关于推进公共数据开放共享的通知.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def kb_container(tmp_path_factory):
    c = make_container(tmp_path_factory.mktemp("drafting") / "data")
    report = c.knowledge_bases.ingest_documents("samples", sample_documents(), principal=LOCAL_ADMIN)
    assert report.ok, report.to_dict()
    return c


@pytest.fixture
def svc(kb_container):
    kb_container.llm.replies.clear()
    kb_container.llm.calls.clear()
    return kb_container.drafting


def doc_id_of(container, title_part: str) -> str:
    return next(d["doc_id"] for d in container.knowledge_bases.documents("samples", principal=LOCAL_ADMIN)
                if title_part in d["title"])


def test_draft_assembles_gbt9704_element_order(svc, kb_container):
    kb_container.llm.replies = [
        "标题：关于进一步推进公共数据开放共享的通知\n"
        "正文：\n各区人民政府：\n"
        "为提升数字政府建设水平，现就有关事项通知如下[1]。\n"
        "一、公共数据开放申请的审核时限为15个工作日[2]。\n"
        "二、其他事项按有关规定办理[9]。\n"
        "特此通知。\n"
        "示范市数据局\n2025年3月18日"]
    out = svc.draft("通知", "推进公共数据开放共享", ["samples"], issuer="示范市数据局", recipients="各区人民政府", principal=LOCAL_ADMIN)
    today = dt.date.today()
    assert out["title"] == "关于进一步推进公共数据开放共享的通知"
    assert out["recipients"] == "各区人民政府" and out["issuer"] == "示范市数据局"
    assert out["date"] == f"{today.year}年{today.month}月{today.day}日"
    assert out["ai_generated"] is True
    # the body holds neither the addressee nor the signature/date the model wrote; the invalid [9] is gone
    body = out["body"]
    assert body.startswith("为提升数字政府建设水平") and body.endswith("特此通知。")
    assert "各区人民政府：" not in body and "示范市数据局" not in body and "2025年3月18日" not in body
    assert "[9]" not in body and "[1]" in body
    text = out["text"]
    positions = [text.index(out["title"]), text.index("各区人民政府："), text.index(body),
                 text.index("示范市数据局\n"), text.index(out["date"]), text.index(load_prompt("ai_label"))]
    assert positions == sorted(positions)
    assert text.startswith(out["title"]) and text.endswith(load_prompt("ai_label"))
    cites = out["citations"]
    assert cites and {"n", "label", "doc_id", "text", "cited"} <= cites[0].keys()
    assert [c["n"] for c in cites] == list(range(1, len(cites) + 1))
    assert {c["n"] for c in cites if c["cited"]} == {1, 2}
    refs = text.split("参考依据：\n", 1)[1].split("\n\n", 1)[0].split("\n")
    assert refs and refs[0].startswith("[1]")     # passages of one document share a line: [1][2] 《…》
    assert sorted(int(n) for line in refs for n in re.findall(r"\[(\d+)\]", line.split(" ", 1)[0])) == [1, 2]
    # the model saw the guidance for the 文种 and the retrieved passages
    prompt = kb_container.llm.calls[-1][-1]["content"]
    assert load_prompt("draft_notice").splitlines()[0] in prompt and "[1] " in prompt


def test_draft_defaults_title_and_omits_empty_elements(svc):
    out = svc.draft("报告", "公共数据开放审核时限执行情况", ["samples"], date="2025-12-01",
                    principal=LOCAL_ADMIN)   # scripted default reply
    assert out["title"] == "关于公共数据开放审核时限执行情况的报告"
    assert out["date"] == "2025年12月1日"
    assert out["recipients"] == "" and out["issuer"] == ""
    lines = out["text"].split("\n")
    assert lines[0] == out["title"] and lines[1] == ""
    assert lines[2] == out["body"].split("\n")[0]                   # no 主送机关 line when none was given
    assert out["body"] and "[1]" in out["body"]


def test_draft_rejects_off_type_title_from_model(svc, kb_container):
    kb_container.llm.replies = ["标题：天气预报\n正文：\n现将有关情况函告如下。特此函告。"]
    out = svc.draft("函", "商请提供公共数据共享清单", [], principal=LOCAL_ADMIN)
    assert out["title"] == "关于商请提供公共数据共享清单的函"
    assert out["citations"] == [] and out["body"] == "现将有关情况函告如下。特此函告。"


@pytest.mark.parametrize("doc_type", ["公告", "", "通知 ", "notice"])
def test_draft_validates_doc_type(svc, doc_type):
    if doc_type.strip() in DOC_TYPES:       # surrounding spaces are tolerated
        svc.draft(doc_type, "测试", [], principal=LOCAL_ADMIN)
        return
    with pytest.raises(ValueError, match="doc_type"):
        svc.draft(doc_type, "测试", ["samples"], principal=LOCAL_ADMIN)


def test_draft_validates_other_fields(svc):
    with pytest.raises(ValueError, match="topic"):
        svc.draft("通知", "  ", ["samples"], principal=LOCAL_ADMIN)
    with pytest.raises(ValueError, match="date"):
        svc.draft("通知", "测试", ["samples"], date="明天", principal=LOCAL_ADMIN)
    with pytest.raises(ValueError, match="doc_ids"):
        svc.draft("通知", "测试", ["samples"], doc_ids=["no-such-doc"], principal=LOCAL_ADMIN)


def test_draft_enforces_read_access(svc, kb_container):
    outsider = Principal("reader-of-other", "reader", ("other",))
    with pytest.raises(AccessDenied):
        svc.draft("通知", "推进公共数据开放共享", ["samples"], principal=outsider)
    assert kb_container.llm.calls == []             # refused before retrieval or generation
    reader = Principal("reader-of-samples", "reader", ("samples",), levels=("公开", "内部"))
    assert svc.draft("通知", "推进公共数据开放共享", ["samples"], principal=reader)["body"]


def test_draft_grounded_in_chosen_documents(svc, kb_container):
    guide = doc_id_of(kb_container, "餐饮")
    out = svc.draft("通知", "推进公共数据开放共享", ["samples"], doc_ids=[guide], principal=LOCAL_ADMIN)
    assert out["citations"] and {c["doc_id"] for c in out["citations"]} == {guide}


def test_chinese_date():
    assert chinese_date(dt.date(2026, 11, 25)) == "2026年11月25日"
    assert chinese_date("2025-03-08") == "2025年3月8日"
    assert chinese_date("2025年03月08日") == "2025年3月8日"
    with pytest.raises(ValueError):
        chinese_date("2025-02-30")


# -- polish -----------------------------------------------------------------------------------------------------

def test_polish_rewrites_in_official_style(svc, kb_container):
    kb_container.llm.replies = ["请各单位抓紧推进此项工作，确保于2025年6月底前完成。"]
    out = svc.polish("咱们得赶紧把这个事儿搞定哈，2025年6月底前必须弄完。")
    assert out == {"text": "请各单位抓紧推进此项工作，确保于2025年6月底前完成。", "ai_generated": True, "warnings": []}
    assert "2025年6月底前必须弄完" in kb_container.llm.calls[-1][-1]["content"]


def test_polish_keeps_original_when_numbers_change(svc, kb_container):
    original = "咱们得赶紧把这个事儿搞定哈，2025年6月底前必须弄完。"
    kb_container.llm.replies = ["请各单位抓紧推进此项工作，确保于2025年9月底前完成。"]
    out = svc.polish(original, instruction="更正式")
    assert out["text"] == original and out["ai_generated"] is True
    assert out["warnings"] and "数字" in out["warnings"][0]


def test_polish_long_text_goes_piece_by_piece(svc, kb_container):
    paras = [f"第{i}段内容，" + "这个事情大家都要上心。" * 40 for i in range(1, 4)]
    text = "\n".join(paras)
    kb_container.llm.replies = [f"第{i}段内容，" + "此项工作各单位须高度重视。" * 40 for i in range(1, 4)]
    out = svc.polish(text)
    assert len(kb_container.llm.calls) == 3 and out["warnings"] == []
    assert out["text"].split("\n")[1].startswith("第2段内容，此项工作")
    with pytest.raises(ValueError, match="text"):
        svc.polish("   ")


# -- action items ---------------------------------------------------------------------------------------------

def _rows(*rows: tuple[str, str, str, str]) -> str:
    return json.dumps({"rows": [{"section": sid, "事项": a, "责任单位": b, "完成时限": c} for sid, a, b, c in rows]},
                      ensure_ascii=False)


def test_extract_actions_on_sample_notice(svc, kb_container):
    kb_container.llm.replies = [_rows(
        ("S2", "开展督促检查并定期通报", "市数据局、市政府督查室", "定期"),
        ("S1", "建设外星数据中心", "市外星局", "2025年12月底前"),
        ("S1", "统一编制数据目录", "市数据局", "2025年6月30日前"))]
    out = svc.extract_actions(NOTICE)
    rows = out["rows"]
    assert out["ai_generated"] is True and out["warnings"] == []
    assert all(set(r) == {"事项", "责任单位", "完成时限"} for r in rows)
    catalog_row = next(r for r in rows if r["事项"] == "统一编制数据目录")
    assert catalog_row["责任单位"] == "市数据局、各区人民政府、市政府各部门" and catalog_row["完成时限"] == "2025年6月底前"
    assert any("市数据局" in r["责任单位"] and r["完成时限"] == "2025年12月底前" for r in rows)
    assert any(r["责任单位"] == "各区、各部门" and r["完成时限"] == "2025年4月30日前" for r in rows)
    assert all("外星" not in r["责任单位"] for r in rows)                  # invented unit dropped
    assert any(r["事项"] == "开展督促检查并定期通报" for r in rows)         # the model's row the rules missed
    assert sum(r["事项"] == "统一编制数据目录" for r in rows) == 1           # restated row merged, not duplicated
    # the model only saw what the rules did not already cover, as numbered lines, under a JSON schema
    assert len(kb_container.llm.calls) == 1
    prompt = kb_container.llm.calls[0][-1]["content"]
    assert "责任单位：" not in prompt and prompt.startswith("[S1] ")


def test_extract_actions_a_backend_without_json(svc, kb_container):
    kb_container.llm.replies = ["加强督促检查｜市数据局｜定期"]        # free text: the backend ignored the schema
    out = svc.extract_actions(NOTICE)
    assert out["rows"] and any(r["完成时限"] == "2025年6月底前" for r in out["rows"])   # the rule rows stand
    assert len(out["warnings"]) == 1 and "JSON" in out["warnings"][0]


def test_extract_actions_validates(svc):
    with pytest.raises(ValueError, match="text"):
        svc.extract_actions("")


def test_draft_marks_uncited_restatements_of_a_passage(svc, kb_container):
    kb_container.llm.replies = ["正文：\n为提升效率，现就有关事项通知如下。\n"
                                "公共数据开放申请的审核时限为15个工作日，不同意开放的，应当说明理由。\n特此通知。"]
    out = svc.draft("通知", "公共数据开放申请审核时限", ["samples"], principal=LOCAL_ADMIN)
    source = next(c for c in out["citations"] if "审核时限为15个工作日" in c["text"])
    assert f"应当说明理由[{source['n']}]。" in out["body"]
    assert "通知如下。" in out["body"] and "通知如下[" not in out["body"]     # own words: no mark
    assert source["cited"] and f"[{source['n']}]" in out["text"].split("参考依据：")[1]


def test_truncated_body_ends_at_its_last_full_sentence():
    from assistant.services.drafting import drop_unfinished_sentence
    assert drop_unfinished_sentence("一、总体要求。\n二、主要任务，各单位要") == "一、总体要求。"
    assert drop_unfinished_sentence("特此通知。") == "特此通知。"


def test_draft_drops_prompt_residue(svc, kb_container):
    kb_container.llm.replies = [
        "```\n**标题：关于推进公共数据开放共享的通知**\n正文：\n"
        "[1] 《示范市人民政府办公厅关于推进公共数据开放共享的通知》（示政办发〔2025〕12号）\n"
        "根据《示范市数据条例（节选）》第二章 公共数据 > 第八条（示范市人民代表大会常务委员会，2024-11-20，现行有效）\n"
        "各单位要按照要求做好公共数据开放工作。\n参考依据：\n[1] 《示范市数据条例（节选）》\n"
        "【人工智能生成合成内容】本内容由人工智能根据知识库资料生成。\n```"]
    out = svc.draft("通知", "推进公共数据开放共享", ["samples"], principal=LOCAL_ADMIN)
    assert out["title"] == "关于推进公共数据开放共享的通知"
    assert out["body"] == "各单位要按照要求做好公共数据开放工作。"
    assert out["text"].count("人工智能生成合成内容") == 1


def test_draft_reads_an_unlabelled_title_and_addressee(svc, kb_container):
    kb_container.llm.replies = ["关于推进公共数据开放共享工作的请示\n\n市人民政府：\n"
                                "为推进公共数据开放共享，拟制定工作方案。\n妥否，请批示。\n示范市数据局"]
    out = svc.draft("请示", "推进公共数据开放共享", ["samples"], recipients="市人民政府", issuer="示范市数据局", principal=LOCAL_ADMIN)
    assert out["title"] == "关于推进公共数据开放共享工作的请示"
    assert out["body"] == "为推进公共数据开放共享，拟制定工作方案。\n妥否，请批示。"
    kb_container.llm.replies = ["各区人民政府，市政府各委、办、局：\n现将有关事项通知如下。"]
    assert svc.draft("通知", "推进公共数据开放共享", ["samples"], principal=LOCAL_ADMIN)["body"] == "现将有关事项通知如下。"


def test_extract_actions_sends_the_model_only_unread_sentences(svc, kb_container):
    text = ("会议议定：一、市数据局牵头，会同市财政局在2026年3月底前完成政务云迁移方案。二、各区政府要抓紧梳理本区数据资源目录，"
            "6月底前报送市数据局。三、市公安局负责做好数据安全保障工作。")
    # a 完成时限 the text does not state: 未明确 (the rows have no place for a flag)
    kb_container.llm.replies = [_rows(("S1", "做好数据安全保障工作", "市公安局", "2026年12月底前"))]
    rows = svc.extract_actions(text)["rows"]
    prompt = kb_container.llm.calls[-1][-1]["content"]
    assert "市公安局负责做好数据安全保障工作" in prompt and "政务云迁移" not in prompt
    assert [r["责任单位"] for r in rows] == ["市数据局、市财政局", "各区政府", "市公安局"]
    assert rows[2] == {"事项": "做好数据安全保障工作", "责任单位": "市公安局", "完成时限": "未明确"}


def test_draft_figures_the_passages_do_not_state_become_placeholders(svc, kb_container):
    kb_container.llm.replies = [
        "标题：关于推进公共数据开放共享的通知\n正文：\n"
        "一、公共数据开放申请的审核时限为15个工作日[1]。\n"
        "二、市财政安排专项资金3000万元，2026年6月30日前完成[1]。\n特此通知。"]
    out = svc.draft("通知", "推进公共数据开放共享", ["samples"], issuer="示范市数据局", recipients="各区人民政府", principal=LOCAL_ADMIN)
    body = out["body"]
    assert "3000万元" not in body and "2026年6月30日" not in body and "资金〔待补充〕，〔待补充〕前完成" in body
    assert {"2026年6月30日", "3000万元"} <= set(out["verification"]["replaced"])
    # 15个工作日 stays only if the passage the sentence cites states it
    stated = "15个工作日" in next(c["text"] for c in out["citations"] if c["n"] == 1)
    assert ("15个工作日" in body) == stated
