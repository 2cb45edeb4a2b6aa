"""One-stop service guide (一网通办): fields filled from the guide's own sections, cited, "未找到" where silent.
Unit profile: the scripted LLM and the hashing embedder."""
from __future__ import annotations

import json

import pytest

from assistant.demo import sample_documents
from assistant.services.access import LOCAL_ADMIN, AccessDenied, Principal
from assistant.services.service_guide import FIELDS, NOT_FOUND, field_of
from conftest import make_container
from ingest.loaders import SourceDocument

# a guide that is silent on 收费标准 and 依据 (and on 办理地点, except through its inline label line)
CERT_GUIDE = """示范市无犯罪记录证明开具办事指南

一、事项名称

无犯罪记录证明开具。本指南适用于在示范市申请开具本人无犯罪记录证明的情形。

二、申请材料

1. 申请人居民身份证（原件）；
2. 委托他人办理的，提交授权委托书及受托人居民身份证（原件）。

三、办理流程

1. 申请：申请人到户籍所在地派出所提交申请。
2. 审核：民警核查申请人信息。
3. 出具：符合条件的，出具无犯罪记录证明。

四、其他事项

办理时限：3个工作日。
"""


@pytest.fixture(scope="module")
def kb_container(tmp_path_factory):
    c = make_container(tmp_path_factory.mktemp("guide") / "data")
    docs = sample_documents() + [SourceDocument("cert-guide", "示范市无犯罪记录证明开具办事指南", "cert.txt", CERT_GUIDE,
                                                metadata={"doc_type": "办事指南", "status": "现行有效"})]
    report = c.knowledge_bases.ingest_documents("guides", docs, principal=LOCAL_ADMIN)
    assert report.ok, report.to_dict()
    return c


@pytest.fixture
def svc(kb_container):
    if "llm" in kb_container.__dict__:
        kb_container.llm.replies.clear()
        kb_container.llm.calls.clear()
    return kb_container.service_guide


def test_restaurant_guide_fields_are_cited_sections(svc, kb_container):
    out = svc.guide("我要开办餐饮店", ["guides"], principal=LOCAL_ADMIN)
    assert out["request"] == "我要开办餐饮店" and out["ai_generated"] is True
    assert set(out["fields"]) == set(FIELDS)
    assert "餐饮" in out["document"]["title"]
    cites = {c["n"]: c for c in out["citations"]}
    materials = out["fields"]["申请材料"]
    assert materials["found"] is True and materials["citations"]
    assert "《食品经营许可申请书》" in materials["text"] and "健康证明复印件" in materials["text"]
    for name in FIELDS:             # the sample guide covers every field, each verbatim from what it cites
        f = out["fields"][name]
        assert f["found"] and f["citations"], name
        cited_text = "\n".join(cites[n]["text"] for n in f["citations"])
        assert all(line in cited_text or line in cites[f["citations"][0]]["metadata"]["heading"]
                   for line in f["text"].split("\n")), name
        assert all(cites[n]["doc_id"] == out["document"]["doc_id"] for n in f["citations"])
    assert out["fields"]["收费标准"]["text"] == "不收费。"
    assert "10个工作日" in out["fields"]["办理时限"]["text"]
    assert "食品安全法" in out["fields"]["依据"]["text"]
    assert {"n", "label", "doc_id", "text"} <= set(out["citations"][0])
    assert "llm" not in kb_container.__dict__        # structure only: the model was never loaded


def test_newborn_guide(svc):
    out = svc.guide("新生儿落户需要什么材料", ["guides"], principal=LOCAL_ADMIN)
    assert "新生儿" in out["document"]["title"]
    assert "《出生医学证明》" in out["fields"]["申请材料"]["text"]
    assert out["fields"]["办理时限"]["text"].startswith("当场办结")


def test_field_absent_from_kb_is_not_found(svc):
    out = svc.guide("办理无犯罪记录证明需要什么材料", ["guides"], principal=LOCAL_ADMIN)
    assert out["document"]["doc_id"] == "cert-guide"
    fields = out["fields"]
    for name in ("收费标准", "依据", "办理条件", "办理地点"):
        assert fields[name] == {"text": NOT_FOUND, "citations": [], "found": False}, name
    assert fields["申请材料"]["found"] and "居民身份证" in fields["申请材料"]["text"]
    assert fields["办理流程"]["found"] and "出具无犯罪记录证明" in fields["办理流程"]["text"]
    assert fields["办理时限"] == {"text": "3个工作日。", "citations": fields["办理时限"]["citations"], "found": True}
    assert fields["办理时限"]["citations"]          # the inline label line "办理时限：3个工作日。"


def test_unrelated_request_finds_nothing(svc):
    out = svc.guide("我要办理出国护照", ["guides"], principal=LOCAL_ADMIN)
    assert out["document"] is None and out["citations"] == []
    assert all(f == {"text": NOT_FOUND, "citations": [], "found": False} for f in out["fields"].values())


def test_long_sections_condensed_in_one_guarded_call(svc, kb_container):
    svc.condense_over = 200
    try:
        kb_container.llm.replies = [json.dumps({
            "办理条件": "取得营业执照；具有相适应的场所、设备设施、食品安全管理人员和规章制度；从业人员持有有效健康证明。",
            "申请材料": "许可申请书原件1份、营业执照复印件等，共99项材料。"},     # 99 is not in the source: rejected
            ensure_ascii=False)]
        out = svc.guide("我要开办餐饮店", ["guides"], principal=LOCAL_ADMIN)
    finally:
        svc.condense_over = 800
    assert len(kb_container.llm.calls) == 1
    prompt = kb_container.llm.calls[0][-1]["content"]
    assert "只输出一个JSON对象" in prompt and "【办理条件】" in prompt
    assert out["fields"]["办理条件"]["text"].startswith("取得营业执照；")
    assert "《食品经营许可申请书》" in out["fields"]["申请材料"]["text"]      # kept verbatim
    assert out["document"]["condensed"] == ["办理条件"]
    assert out["fields"]["收费标准"]["text"] == "不收费。"


def test_condensing_asks_one_json_string_per_field_and_survives_a_backend_without_json(svc, kb_container):
    seen = {}
    real = type(kb_container.llm)._generate

    def spy(self, messages, stop=None, run_manager=None, **kw):
        seen.update(kw.get("response_format") or {})
        return real(self, messages, stop, run_manager, **kw)

    svc.condense_over = 200
    try:
        type(kb_container.llm)._generate = spy
        out = svc.guide("我要开办餐饮店", ["guides"],
                        principal=LOCAL_ADMIN)        # nothing queued: the schema's minimal instance
        schema = seen["json_schema"]["schema"]
        assert schema["type"] == "object" and set(schema["required"]) == set(schema["properties"])
        assert "办理条件" in schema["properties"] and schema["properties"]["办理条件"]["type"] == "string"
        assert out["document"]["condensed"] == []      # empty strings are no condensation: verbatim
        kb_container.llm.replies = ["【办理条件】\n取得营业执照。"]  # a backend that ignores response_format
        out = svc.guide("我要开办餐饮店", ["guides"], principal=LOCAL_ADMIN)
    finally:
        type(kb_container.llm)._generate = real
        svc.condense_over = 800
    assert out["document"]["condensed"] == [] and out["fields"]["办理条件"]["text"].startswith("申请人")   # verbatim


def test_guide_enforces_read_access_and_validates(svc):
    with pytest.raises(AccessDenied):
        svc.guide("我要开办餐饮店", ["guides"], principal=Principal("r", "reader", ("other",)))
    assert svc.guide("我要开办餐饮店", ["guides"], principal=Principal("r", "reader", ("guides",), levels=("内部",)))["fields"]
    with pytest.raises(ValueError, match="request"):
        svc.guide("  ", ["guides"], principal=LOCAL_ADMIN)
    with pytest.raises(ValueError, match="knowledge base"):
        svc.guide("我要开办餐饮店", [], principal=LOCAL_ADMIN)


def test_field_of_headings():
    assert field_of("四、申请材料") == "申请材料"
    assert field_of("八、办理地点及线上入口") == "办理地点"
    assert field_of("二、办理依据") == "依据"
    assert field_of("（三）承诺时限") == "办理时限"
    assert field_of("申请人应当先行取得营业执照等合法主体资格，并符合下列条件：") == "办理条件"
    assert field_of("一、事项名称") is None and field_of("第三条") is None
