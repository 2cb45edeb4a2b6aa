import math
import random

import numpy as np
import pytest

from eval.metrics import (
    REFUSAL_MARKERS, char_f1, contains_answer, dedupe_keep_order, exact_match, is_refusal,
    lcs_length, mean, mrr_at_k, ndcg_at_k, normalize_answer, percentile, recall_at_k,
    rouge_l, rrf_fuse,
)

RGB_REJECT = "文档信息不足，因此我无法基于提供的文档回答该问题。"


def test_normalize_full_width_punct_space():
    assert normalize_answer("２０２４年　ＡＢＣ，第（一）条！") == "2024年abc第一条"
    assert normalize_answer("《上海市 数据条例》——“第3条”…") == "上海市数据条例第3条"
    assert normalize_answer("a-b [c] <d>; e.f?") == "abcdef"


def test_char_f1():
    # overlap 6, P = 6/6, R = 6/9 -> 2*1*(6/9)/(1+6/9) = 0.8
    assert char_f1("上海市数据局", "上海市数据局办公室") == pytest.approx(0.8)
    assert char_f1("１２３４５", "12345") == pytest.approx(1.0)  # full-width digits
    assert char_f1("", "") == pytest.approx(1.0)
    assert char_f1("", "上海") == pytest.approx(0.0)
    assert char_f1("北京", "上海") == pytest.approx(0.0)
    # multiset: pred "数数据" vs gold "数据": overlap 2, P=2/3, R=1 -> 0.8
    assert char_f1("数数据", "数据") == pytest.approx(0.8)


def test_exact_match():
    assert exact_match("《数据安全法》。", "数据安全法") == pytest.approx(1.0)
    assert exact_match("2024年１月１日", "2024年1月1日！") == pytest.approx(1.0)
    assert exact_match("Hello, World", "hello world") == pytest.approx(1.0)
    assert exact_match("数据安全法", "个人信息保护法") == pytest.approx(0.0)


def test_lcs_length():
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
    assert lcs_length([], list("abc")) == 0
    rnd = random.Random(0)

    def ref(a, b):  # full 2-D table
        t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                t[i + 1][j + 1] = t[i][j] + 1 if x == y else max(t[i][j + 1], t[i + 1][j])
        return t[-1][-1]

    for _ in range(50):
        a = [rnd.choice("abc") for _ in range(rnd.randint(0, 12))]
        b = [rnd.choice("abc") for _ in range(rnd.randint(0, 12))]
        assert lcs_length(a, b) == ref(a, b)
    long = [rnd.choice("甲乙丙丁") for _ in range(2000)]
    assert lcs_length(long, long) == 2000


def test_rouge_l_char_and_jieba():
    pred, gold = "上海市数据局负责公共数据开放。", "公共数据开放由上海市大数据中心负责"
    # char: 14 vs 17 chars; LCS "上海市数据负责" = 7 -> 2*7/(14+17) = 14/31
    assert rouge_l(pred, gold) == pytest.approx(14 / 31)
    # jieba: [上海市 数据 局 负责 公共数据 开放] (6) vs
    #        [公共数据 开放 由 上海市 大 数据中心 负责] (7); LCS = 2 -> 4/13
    assert rouge_l(pred, gold, tokenize="jieba") == pytest.approx(4 / 13)
    assert rouge_l("一网通办", "一网通办") == pytest.approx(1.0)
    assert rouge_l("", "上海") == pytest.approx(0.0)
    with pytest.raises(ValueError):
        rouge_l("a", "b", tokenize="bpe")


def test_ranking_metrics_with_duplicates():
    ranked = ["d1", "d1", "d2", "d1", "d3", "d4"]  # deduped: d1 d2 d3 d4
    assert dedupe_keep_order(ranked) == ["d1", "d2", "d3", "d4"]
    assert recall_at_k(ranked, {"d3"}, 2) == pytest.approx(0.0)  # raw top-2 is d1,d1
    assert recall_at_k(ranked, {"d3"}, 3) == pytest.approx(1.0)  # deduped rank 3
    assert recall_at_k(ranked, [], 5) == pytest.approx(0.0)
    assert mrr_at_k(ranked, ["d3", "d9"], k=10) == pytest.approx(1 / 3)
    assert mrr_at_k(ranked, ["d3"], k=2) == pytest.approx(0.0)
    # gold {d2, d4}: DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(ranked, {"d2", "d4"}, k=10) == pytest.approx(expected)  # ~0.6509
    assert ndcg_at_k(ranked, {"d2", "d4"}, k=10) == pytest.approx(0.650921, abs=1e-6)
    # k=1 -> IDCG from min(2, 1) = 1 slot; top-1 d1 not gold
    assert ndcg_at_k(ranked, {"d2", "d4"}, k=1) == pytest.approx(0.0)
    assert ndcg_at_k(ranked, {"d1"}, k=3) == pytest.approx(1.0)


def test_rrf_fuse_scores_and_ties():
    fused = rrf_fuse([["a", "b", "c"], ["b", "c", "a"]], k=60)
    assert [d for d, _ in fused] == ["b", "a", "c"]
    assert dict(fused)["b"] == pytest.approx(1 / 62 + 1 / 61)  # 0.032522...
    assert dict(fused)["a"] == pytest.approx(1 / 61 + 1 / 63)
    # equal score and equal best rank -> first appearance (list 0 before list 1)
    tie = rrf_fuse([["x", "y"], ["z", "w"]], k=60)
    assert tie == [("x", pytest.approx(1 / 61)), ("z", pytest.approx(1 / 61)),
                   ("y", pytest.approx(1 / 62)), ("w", pytest.approx(1 / 62))]
    # equal score 1.0 (k=0: p = 2/2, q = 1/1) -> q wins on best rank 1 despite p appearing first
    ws = rrf_fuse([["o", "p"], ["q"]], k=0, weights=[2.0, 1.0])
    assert ws == [("o", pytest.approx(2.0)), ("q", pytest.approx(1.0)), ("p", pytest.approx(1.0))]
    # duplicates inside a list count once
    assert rrf_fuse([["a", "a", "b"]], k=0) == [("a", 1.0), ("b", 0.5)]
    with pytest.raises(ValueError):
        rrf_fuse([["a"]], weights=[1.0, 2.0])


def test_contains_answer():
    pred = "根据《上海市数据条例》，自２０２２年１月１日起施行，由市数据局负责。"
    assert contains_answer(pred, "2022年1月1日") is True
    assert contains_answer(pred, ["上海市数据条例", ["市数据局", "大数据中心"]]) is True
    assert contains_answer(pred, ["上海市数据条例", ["市经信委", "大数据中心"]]) is False
    assert contains_answer(pred, [["数据条例", "数据法"], "2023年"]) is False
    assert contains_answer(pred, []) is False
    assert contains_answer(pred, [""]) is False


def test_is_refusal():
    assert is_refusal("知识库中未找到相关依据。") is True
    assert is_refusal(RGB_REJECT) is True
    assert is_refusal("I don't know.") is True
    assert is_refusal("Sorry, I cannot  answer this.") is True
    assert is_refusal("") is True
    assert is_refusal("《上海市数据条例》自2022年1月1日起施行。[1]") is False
    assert len(REFUSAL_MARKERS) >= 11


def test_mean_percentile():
    assert mean([]) == pytest.approx(0.0)
    assert mean([1, 2, 3, 4]) == pytest.approx(2.5)
    xs = [10, 1, 7, 3]
    assert percentile([], 50) == pytest.approx(0.0)
    assert percentile(xs, 50) == pytest.approx(5.0)  # sorted 1 3 7 10, pos 1.5 -> 3 + 0.5*4
    assert percentile(xs, 95) == pytest.approx(9.55)  # pos 2.85 -> 7 + 0.85*3
    assert percentile(xs, 0) == pytest.approx(1.0)
    assert percentile(xs, 100) == pytest.approx(10.0)
    for p in (5, 33.3, 90, 99):
        assert percentile(xs, p) == pytest.approx(float(np.percentile(xs, p)))


def test_lawbench_rouge_l_is_its_own_scorer_jieba_plus_rouge_chinese():
    from eval.metrics import rouge_l_lawbench

    pred, gold = "公司因违法排污被罚款十万元", "某公司违法排污被罚十万元"
    # on one sentence it agrees with our jieba-level LCS ROUGE-L; an empty prediction scores as "无内容"
    assert rouge_l_lawbench([pred], [gold])[0] == pytest.approx(rouge_l(pred, gold, "jieba"), abs=1e-6)
    assert rouge_l_lawbench([""], [gold]) == [0.0]
