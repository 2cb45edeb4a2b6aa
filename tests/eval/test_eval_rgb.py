"""RGB suite: passage mixing honours the noise ratio; accuracy and rejection through Answerer.answer_from_passages."""
from __future__ import annotations

import json

import pytest

from eval.data import load_rgb, mix_passages
from eval.base import EvalError, RunOptions
from eval.runner import run_suite
from eval_fixtures import write_rgb

from conftest import make_container

REC = {"id": 7, "query": "q", "answer": ["a"], "positive": [f"P{i}" for i in range(6)],
       "negative": [f"N{i}" for i in range(6)]}


@pytest.mark.parametrize("ratio,n_neg", [(0.0, 0), (0.2, 1), (0.4, 2), (0.6, 3), (0.8, 4), (1.0, 5)])
def test_mixing_honours_the_noise_ratio(ratio, n_neg):
    docs = mix_passages(REC, ratio, 5, seed=2333)
    assert len(docs) == 5
    assert sum(not d["positive"] for d in docs) == n_neg
    assert all(d["text"].startswith("N") != d["positive"] for d in docs)
    # positives and negatives are taken from the front of their lists, as RGB does
    assert sorted(d["text"] for d in docs if d["positive"]) == [f"P{i}" for i in range(5 - n_neg)]


def test_mixing_is_deterministic_and_shuffled():
    a = mix_passages(REC, 0.4, 5, seed=2333)
    assert a == mix_passages(REC, 0.4, 5, seed=2333)
    orders = {tuple(d["text"] for d in mix_passages({**REC, "id": i}, 0.4, 5, seed=2333)) for i in range(20)}
    assert len(orders) > 5                                  # the shuffle depends on the item


def test_mixing_fills_from_the_other_side_when_one_runs_short():
    few_pos = {**REC, "positive": ["P0"]}
    docs = mix_passages(few_pos, 0.2, 5)                    # wants 4 positives, has 1
    assert sum(d["positive"] for d in docs) == 1 and len(docs) == 5
    few_neg = {**REC, "negative": ["N0"]}
    docs = mix_passages(few_neg, 0.8, 5)                    # wants 4 negatives, has 1
    assert sum(not d["positive"] for d in docs) == 1 and len(docs) == 5
    assert all(not d["positive"] for d in mix_passages(REC, 1.0, 5))
    with pytest.raises(ValueError):
        mix_passages(REC, 1.5)


def test_answer_from_passages_uses_the_answer_prompt_and_handles_refusals(tmp_path):
    c = make_container(tmp_path / "data")
    passages = [{"text": "示范会议在城市1号举办。", "title": "检索结果"}, {"text": "无关新闻。", "title": "检索结果"}]
    ans = c.answerer.answer_from_passages("会议在哪里举办？", passages)
    assert not ans.refused and "城市1号" in ans.answer and ans.citations[0].cited
    prompt = c.llm.calls[-1]
    assert prompt[0]["role"] == "system" and "[1]" in prompt[-1]["content"] and "会议在哪里举办" in prompt[-1]["content"]
    c.llm.replies.append("知识库中未找到相关依据。")
    refused = c.answerer.answer_from_passages("会议在哪里举办？", passages)
    assert refused.refused and refused.citations == []
    c.llm.replies.append("在城市1号[1][9]")              # a marker beyond the passages is dropped
    assert c.answerer.answer_from_passages("q", passages).answer == "在城市1号[1]"


def test_rgb_suite_accuracy_rejection_and_report(tmp_path):
    data = write_rgb(tmp_path / "zh.json", n=3)
    # the harness's accounting, so the quote of a positive passage for an answer refused as unanchored is off
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__QUOTE_MIN_ANCHOR="0")
    out = tmp_path / "run"
    # the scripted model answers with passage [1]'s first sentence: right when [1] is a positive
    summary = run_suite(c, RunOptions("rgb", out, data=data, limit=2))
    rgb = summary["suites"]["rgb"]
    assert set(rgb["noise"]) == {"0", "0.2", "0.4", "0.6", "0.8"}
    assert all(v["n"] == 2 for v in rgb["noise"].values())
    assert rgb["noise"]["0"]["accuracy"] == 100.0           # five positives: [1] always holds the answer
    assert rgb["rejection"]["n"] == 2
    items = [json.loads(x) for x in (out / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(items) == 12
    for rec in items:
        first_positive = rec["passages"][0]["positive"]
        if rec["task"] == "noise":
            assert rec["metrics"]["correct"] == float(first_positive)
            assert sum(not p["positive"] for p in rec["passages"]) == round(5 * rec["noise_ratio"])
        else:
            assert not any(p["positive"] for p in rec["passages"])
            # the scripted model answers from noise ("某地举办了体育比赛"): supported, but not where the question's
            # terms are, so the product refuses it (anchoring) and the harness counts a rejection
            assert rec["metrics"]["rejected"] == 1.0 and rec["verification"]["reason"] == "unanchored"
    assert rgb["published"]["noise"]["ChatGPT"]["0.4"] == 91.0
    assert (out / "rgb_noise.png").is_file()
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "ChatGPT (paper)" in md and "rgb_noise.png" in md


def test_rgb_refusals_count_as_rejections_and_never_as_correct(tmp_path):
    data = write_rgb(tmp_path / "zh.json", n=1)
    c = make_container(tmp_path / "data")
    # five noise answers, then the rejection item: all refusals, the first one naming the answer anyway
    c.llm.replies.extend(["城市0号？知识库中未找到相关依据。"] + ["知识库中未找到相关依据。"] * 4 + ["抱歉，文档信息不足，无法回答。"])
    summary = run_suite(c, RunOptions("rgb", tmp_path / "run", data=data))
    rgb = summary["suites"]["rgb"]
    assert all(v["accuracy"] == 0.0 for v in rgb["noise"].values())
    assert rgb["rejection"]["rate"] == 100.0


def test_rgb_has_no_retrieval_stage(tmp_path):
    data = write_rgb(tmp_path / "zh.json", n=1)
    with pytest.raises(EvalError, match="no retrieval stage"):
        run_suite(make_container(tmp_path / "data"), RunOptions("rgb", tmp_path / "run", data=data,
                                                                retrieval_only=True))


def test_load_rgb_checks_fields(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": 1, "query": "q"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing field"):
        load_rgb(bad)
