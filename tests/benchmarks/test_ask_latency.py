"""benchmarks/ask_latency.py's pre-#13 answerer keeps working as the Answerer it overrides changes (its
build_context once missed the screening's idf weights and broke the side-by-side run)."""
from __future__ import annotations

import importlib.util

from assistant.services.access import LOCAL_ADMIN, scope
from assistant.settings import PROJECT_ROOT
from conftest import make_container
from ingest.loaders import SourceDocument

TEXT = ("一、申请材料\n出生医学证明原件；父母双方户口簿和居民身份证。\n二、办理时限\n材料齐全的，3个工作日内办结。"
        "\n三、收费标准\n不收费。\n四、办理地点\n示范市政务服务中心一楼户籍窗口，工作日上午九时至下午五时。")


def load_benchmark():
    spec = importlib.util.spec_from_file_location("ask_latency", PROJECT_ROOT / "benchmarks" / "ask_latency.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_old_and_new_configurations_answer_side_by_side(tmp_path):
    bench = load_benchmark()
    c = make_container(tmp_path / "data")
    doc = SourceDocument("guide", "示范市新生儿入户办事指南", "g.txt", TEXT, metadata={"agency": "示范市公安局"})
    assert c.knowledge_bases.ingest_documents("kb", [doc], principal=LOCAL_ADMIN).ok
    question = "新生儿入户的办理时限是多久？"
    prompts = {}
    for name, answerer in (("old", bench.old_answerer(c)), ("new", c.answerer)):
        c.llm.replies.append("材料齐全的，3个工作日内办结[1]。")
        a = answerer.ask(question, *scope(LOCAL_ADMIN, ["kb"]))
        assert not a.refused and "3个工作日" in a.answer, name
        prompts[name] = c.llm.calls[-1][-1]["content"]
    # old: five passages, each under the full pre-#13 header; new: at most answer.max_passages, grouped under their
    # document's header once
    assert "[5]" in prompts["old"] and prompts["old"].count("示范市公安局，现行有效") == 5
    assert "[5]" not in prompts["new"] and prompts["new"].count("示范市公安局，现行有效") == 1
    assert len(prompts["new"]) < len(prompts["old"])
