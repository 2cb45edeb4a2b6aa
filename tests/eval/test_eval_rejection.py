"""The rejection suite on the unit profile (scripted LLM, hashing embedder) over a tiny NCP-shaped corpus: the
selection removes every document holding an absent question's gold span, keeps the present questions' gold
documents, splits by id parity, and the report's rates are those of the recorded items."""
from __future__ import annotations

import json

import pytest

from eval import metrics as M
from eval.suites.rejection import aggregate as aggregate_rejection
from eval.base import EvalError, RunOptions
from eval.runner import run_suite
from eval.suites.common import strip_citations
from eval.suites.rejection import declined, half_of, select

from conftest import make_container
from eval_fixtures import DOCS, QUESTIONS, TWIN

# besides the gold documents: a digest that repeats q3's span (免收2月份房租, with other punctuation), so removing the
# gold document alone would leave the answer in the knowledge base
EXTRA = [("doc-digest", "政策汇编\n各地出台措施：免收2月份房租；社保费缓缴；贷款展期。"),
         ("doc-other", "关于做好春季农业生产的通知\n各地要抓好春耕备耕，保障农资供应。")]


def write_corpus(root):
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as f:
        for docid, text in DOCS + [TWIN] + EXTRA:
            f.write(json.dumps({"docid": docid, "text": text}, ensure_ascii=False) + "\n")
    with open(root / "dev_qa.jsonl", "w", encoding="utf-8") as f:
        for qid, docid, q, a in QUESTIONS:
            f.write(json.dumps({"id": qid, "docid": docid, "question": q, "answer": a}, ensure_ascii=False) + "\n")
    return root


def corpus_map():
    return dict(DOCS + [TWIN] + EXTRA)


def questions():
    return [{"id": qid, "docid": d, "question": q, "answer": a} for qid, d, q, a in QUESTIONS]


def test_halves_by_id_parity():
    assert [half_of(x) for x in ("12", "7", "q4", "q5", "0a", "0b")] == \
        ["tuned", "held-out", "tuned", "held-out", "tuned", "held-out"]
    assert half_of("17f3894afaba3f24a3ccd550fe442177") == "held-out"     # NCP ids are hexadecimal
    assert half_of("no digits") in ("tuned", "held-out")


@pytest.mark.parametrize("seed", [1, 2, 3, 2333])
def test_selection_removes_every_document_with_the_span(seed):
    corpus = corpus_map()
    twins = {"doc-tax": {"doc-tax", "doc-tax-copy"}, "doc-tax-copy": {"doc-tax", "doc-tax-copy"}}
    picked = select(questions(), corpus, 2, 2, seed, twins)
    assert len(picked["absent"]) == 2 and len(picked["present"]) == 2
    for kind in ("absent", "present"):       # half of each N per half
        assert sorted(q["half"] for q in picked[kind]) == ["held-out", "tuned"]
    kept = {d: t for d, t in corpus.items() if d not in picked["removed"]}
    for q in picked["absent"]:
        span = M.normalize_answer(q["answer"])
        assert not any(span in M.normalize_answer(t) for t in kept.values()), q["id"]
        assert set(q["gold_ids"]) <= picked["removed"] and set(q["removed_ids"]) <= picked["removed"]
    for q in picked["present"]:
        assert not set(q["gold_ids"]) & picked["removed"] and q["docid"] in kept
        assert M.normalize_answer(q["answer"]) in M.normalize_answer(kept[q["docid"]])
    assert not {q["id"] for q in picked["absent"]} & {q["id"] for q in picked["present"]}
    assert select(questions(), corpus, 2, 2, seed, twins) == picked          # deterministic


def test_selection_of_the_copied_span_and_generic_spans():
    corpus = corpus_map()
    qs = [q for q in questions() if q["id"] == "q3"]
    # q3 is odd (held-out): N=1 has one tuned slot only; N=2 has one of each
    assert select(qs, corpus, 1, 0, 0)["absent"] == []
    picked = select(qs, corpus, 2, 0, 0)
    assert [q["half"] for q in picked["absent"]] == ["held-out"] and picked["present"] == []
    assert picked["removed"] == {"doc-rent", "doc-digest"}       # the gold document and the digest repeating it
    generic = [{"id": "q8", "docid": "doc-loan", "question": "…？", "answer": "企业"}]   # in most documents
    picked = select(generic, corpus, 2, 0, 0, max_removed=2)
    assert picked["absent"] == [] and picked["skipped"] == 1


def test_rates_are_computed_per_half():
    def rec(kind, half, refused, f1=None, cites=None, reason=None):
        am = {"refused": float(refused)}
        if f1 is not None:
            am.update(f1=f1, cites_gold=cites)
        r = {"key": f"{kind}{half}{len(recs)}", "id": str(len(recs)), "question": "q", "kind": kind, "half": half,
             "refused": refused, "refusal_marker": False, "metrics": {"answer": am}}
        if reason:
            r["verification"] = {"reason": reason}
        recs.append(r)

    recs: list[dict] = []
    for refused in (True, True, True, False):
        rec("absent", "tuned", refused, reason=None if refused else "")
    rec("present", "tuned", False, 0.5, 1.0)
    rec("present", "tuned", False, 1.0, 0.0)
    rec("absent", "held-out", True)
    rec("present", "held-out", True, reason="unanswerable")
    agg = aggregate_rejection(recs)
    tuned, held, every = agg["halves"]["tuned"], agg["halves"]["held-out"], agg["all"]
    assert (tuned["absent"], tuned["refusal_rate_absent"], tuned["present"], tuned["answer_rate_present"]) == \
        (4, 0.75, 2, 1.0)
    assert tuned["f1_answered"] == 0.75 and tuned["cites_gold_answered"] == 0.5 and tuned["meets_targets"] is False
    assert (held["refusal_rate_absent"], held["answer_rate_present"], held["f1_answered"]) == (1.0, 0.0, None)
    assert (every["absent"], every["refusal_rate_absent"], every["present"], every["answered_present"]) == \
        (5, 0.8, 3, 2)
    assert every["answer_rate_present"] == pytest.approx(2 / 3, abs=1e-4)
    assert agg["wrong_by_reason"] == {"absent": {"–": 1}, "present": {"unanswerable": 1}}
    assert agg["targets"] == {"refusal_rate_absent": 0.85, "answer_rate_present": 0.95}
    # a refusal text counts as refused even without the product's flag
    assert declined({"refused": False, "refusal_marker": True})


def test_rejection_suite_end_to_end_on_the_unit_profile(tmp_path):
    c = make_container(tmp_path / "data")
    data = write_corpus(tmp_path / "ncp")
    out = tmp_path / "run"
    summary = run_suite(c, RunOptions("rejection", out, data=data, n=2))
    items = [json.loads(x) for x in (out / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted((r["kind"], r["half"]) for r in items) == [
        ("absent", "held-out"), ("absent", "tuned"), ("present", "held-out"), ("present", "tuned")]
    removed = set().union(*(r["removed_doc_ids"] for r in items if r["kind"] == "absent"))
    stored = {d["doc_id"]: d for d in c.store.catalog.list_documents("eval-rejection")}
    assert stored and not removed & set(stored)
    texts = [ch["text"] for d in stored for ch in c.store.catalog.document_chunks("eval-rejection", d)]
    for r in items:
        span = M.normalize_answer(r["gold"]["answer"])
        if r["kind"] == "absent":
            assert not any(span in M.normalize_answer(t) for t in texts), r["id"]
        else:
            assert set(r["gold"]["doc_ids"]) & set(stored)
        assert "answer" in r and "citations" in r
        if "verification" in r:
            assert isinstance(r["verification"], dict)
    agg = summary["suites"]["rejection"]
    absent = [r for r in items if r["kind"] == "absent"]
    present = [r for r in items if r["kind"] == "present"]
    assert agg["all"]["refusal_rate_absent"] == sum(map(declined, absent)) / len(absent)
    assert agg["all"]["answer_rate_present"] == sum(not declined(r) for r in present) / len(present)
    for r in present:
        if not declined(r):
            am = r["metrics"]["answer"]
            assert am["f1"] == pytest.approx(M.char_f1(strip_citations(r["answer"]), r["gold"]["answer"]))
            assert am["cites_gold"] == float(any(x["cited"] and x["doc_id"] in r["gold"]["doc_ids"]
                                                 for x in r["citations"]))
    assert (out / "rejection.png").stat().st_size > 1000
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "Suite `rejection`" in report and "held-out" in report and "tuned" in report and "≥ 85" in report
    assert "rejection.png" in report and (out / "kb" / "corpus.jsonl").is_file()

    # resumable: a second run does nothing new; another --n is refused in the same folder
    again = run_suite(c, RunOptions("rejection", out, data=data, n=2))
    assert again["suites"]["rejection"]["run"]["ran"] == 0
    with pytest.raises(EvalError, match="other options"):
        run_suite(c, RunOptions("rejection", out, data=data, n=3))
    # a new selection into the same knowledge base deletes what it removes, re-adds what it keeps
    run_suite(c, RunOptions("rejection", tmp_path / "run3", data=data, n=3, seed=7))
    now = {d["doc_id"] for d in c.store.catalog.list_documents("eval-rejection")}
    items3 = [json.loads(x) for x in (tmp_path / "run3" / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    removed3 = set().union(*(r["removed_doc_ids"] for r in items3 if r["kind"] == "absent"))
    assert not removed3 & now and len(now | removed3) >= len(corpus_map()) - 1     # one twin is a duplicate
    with pytest.raises(EvalError, match="retrieval-only"):
        run_suite(c, RunOptions("rejection", tmp_path / "run4", data=data, retrieval_only=True))


def test_cli_option_and_command_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli.main import app
    data = write_corpus(tmp_path / "ncp")
    env = {"GOV_ASSISTANT_DATA_DIR": str(tmp_path / "data"), "GOV_ASSISTANT_PROFILE": "unit"}
    res = CliRunner().invoke(app, ["eval", "run", "--suite", "rejection", "--data", str(data), "--n", "2",
                                   "--out", str(tmp_path / "run")], env=env)
    assert res.exit_code == 0, res.output
    assert "rejection (target: refuse ≥ 85% absent, answer ≥ 95% present)" in res.stdout
    run = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert "--n 2" in run["runs"]["rejection"]["command"] and run["suites"]["rejection"]["n"] == 2
    assert "n" not in RunOptions("ncp", tmp_path).suite_fingerprint()      # other suites' run folders unchanged


def test_limit_keeps_both_kinds(tmp_path):
    c = make_container(tmp_path / "data")
    summary = run_suite(c, RunOptions("rejection", tmp_path / "run", data=write_corpus(tmp_path / "ncp"), n=2,
                                      limit=2))
    agg = summary["suites"]["rejection"]["all"]
    assert (agg["absent"], agg["present"]) == (1, 1)
