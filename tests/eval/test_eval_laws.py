"""The laws suite: the question file (schema, gold articles in laws.db, paraphrases), the article-level metric
(a repealed or historical version's article is a miss), and a run on the unit profile (hashing embedder) over the
real laws.db, resumable."""
from __future__ import annotations

import json
import re
import sqlite3

import pytest

from eval.data import DataError
from eval.base import RunOptions
from eval.runner import run_suite
from eval.suites.laws import CURRENT, article_metrics, check_against_laws_db, gold_laws, is_gold, load_questions
from ingest.laws import laws_db_path

from conftest import make_container

ARBITRATION = "中华人民共和国仲裁法"       # a current and a historical version, both with a 第五条
ID_CARD = "中华人民共和国居民身份证法"


@pytest.fixture(scope="module")
def questions():
    return load_questions()


def test_the_question_file_is_well_formed(questions):
    assert len(questions) == 60
    assert len({q["id"] for q in questions}) == 60
    assert len(gold_laws(questions)) >= 15
    assert 8 <= sum(q["paraphrase"] for q in questions) <= 15
    halves = [int(q["id"]) % 2 for q in questions]
    assert halves.count(0) == halves.count(1) == 30


def test_every_gold_article_exists_in_laws_db(questions):
    assert check_against_laws_db(questions) == []


def test_paraphrase_questions_share_little_wording_with_their_article(questions):
    """A paraphrase question: at most 5% of its character bigrams occur in its gold articles (most questions are
    lay wording too, but name the matter: 试用期, 产假, 物业费 ...)."""
    db = sqlite3.connect(f"file:{laws_db_path()}?mode=ro", uri=True)
    for q in [q for q in questions if q["paraphrase"]]:
        text = "".join(db.execute("SELECT article_text FROM articles WHERE law_name=? AND article_no=? AND status=?",
                                  (g["law"], a, CURRENT)).fetchone()[0] for g in q["gold"] for a in g["articles"])
        han = re.sub(r"[^\u4e00-\u9fff]", "", q["question"])
        bigrams = {han[i:i + 2] for i in range(len(han) - 1)}
        assert sum(b in text for b in bigrams) / len(bigrams) <= 0.05, q["question"]
    db.close()


def test_a_missing_article_or_law_is_reported(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": 1, "question": "仲裁要多久？", "law": ARBITRATION, "articles": ["第九百条"]},
                               ensure_ascii=False) + "\n" +
                    json.dumps({"id": 2, "question": "？", "law": "中华人民共和国不存在法", "articles": ["第一条"]},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    problems = check_against_laws_db(load_questions(path))
    assert len(problems) == 2
    assert problems[0].startswith(f"{path}:1: ") and "第九百条" in problems[0]
    assert problems[1].startswith(f"{path}:2: ") and "不存在法" in problems[1]


GOOD = {"id": 7, "question": "能去法院吗？", "law": ARBITRATION, "articles": ["第五条"]}


@pytest.mark.parametrize("change, field", [
    ({"articles": "第五条"}, "articles"),                      # not a list
    ({"articles": ["5"]}, "articles"),                         # not 第X条
    ({"articles": []}, "articles"),
    ({"question": ""}, "question"),
    ({"law": None}, "law"),
    ({"id": True}, "id"),
    ({"paraphrase": "yes"}, "paraphrase"),
    ({"article": ["第五条"]}, "article"),                       # a typo is an unknown field, not ignored
    ({"also": [{"law": ARBITRATION}]}, "also[0]"),
    ({"also": [{"law": ARBITRATION, "articles": ["五"]}]}, "articles"),
])
def test_schema_errors_name_the_line_and_the_field(tmp_path, change, field):
    path = tmp_path / "q.jsonl"
    bad = {**GOOD, **change}
    path.write_text(json.dumps({**GOOD, "id": 1}, ensure_ascii=False) + "\n\n" + json.dumps(bad, ensure_ascii=False)
                    + "\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        load_questions(path)
    assert str(exc.value).startswith(f"{path}:3") and f"'{field}'" in str(exc.value)


def test_duplicate_ids_and_bad_json_are_refused(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(GOOD, ensure_ascii=False) + "\n" + json.dumps(GOOD, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    with pytest.raises(DataError, match=r"q.jsonl:2: field 'id': 7 again \(first at line 1\)"):
        load_questions(path)
    path.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"q.jsonl:1: invalid JSON"):
        load_questions(path)


def test_a_historical_or_repealed_version_of_the_gold_article_is_a_miss():
    gold = [{"law": ARBITRATION, "articles": ["第五条"]}]
    old = {"doc_id": "law-old", "law": ARBITRATION, "article": "第五条", "status": "历史版本"}
    repealed = {**old, "doc_id": "law-gone", "status": "已废止"}
    other = {"doc_id": "law-now", "law": ARBITRATION, "article": "第四条", "status": CURRENT}
    hit = {**other, "article": "第五条"}
    assert not is_gold(old, gold) and not is_gold(repealed, gold) and is_gold(hit, gold)
    m = article_metrics([old, repealed, other, hit], gold)
    assert m["rank"] == 4 and m["hit@1"] == 0.0 and m["hit@5"] == 1.0 and m["mrr@10"] == 0.25
    assert m["law_rank"] == 3 and m["law_hit@5"] == 1.0      # the current version is the third document
    assert m["not_current@10"] == 2
    m = article_metrics([old, repealed], gold)
    assert m["rank"] is None and m["hit@10"] == 0.0 and m["mrr@10"] == 0.0 and m["law_hit@5"] == 0.0
    # another law's article of the same number is no hit; an `also` law's is
    elsewhere = {**hit, "law": ID_CARD}
    assert not is_gold(elsewhere, gold) and is_gold(elsewhere, gold + [{"law": ID_CARD, "articles": ["第五条"]}])


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_run_builds_the_kb_of_the_named_laws_and_resumes(tmp_path):
    data = _write(tmp_path / "q.jsonl", [
        {"id": 1, "question": "当事人达成仲裁协议，一方向人民法院提起诉讼的，法院受理吗？", "law": ARBITRATION,
         "articles": ["第五条"]},
        {"id": 2, "question": "仲裁裁决作出后还能向法院起诉吗？", "law": ARBITRATION, "articles": ["第十条"],
         "paraphrase": True},
        {"id": 3, "question": "居民身份证的有效期是多少年？", "law": ID_CARD, "articles": ["第五条"]}])
    c = make_container(tmp_path / "data")
    out = tmp_path / "run"
    run_suite(c, RunOptions("laws", out, data=data, limit=1))
    summary = run_suite(c, RunOptions("laws", out, data=data))
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))["runs"]["laws"]
    assert (run["skipped"], run["ran"]) == (1, 2)                 # the first question was not searched again

    docs = c.store.catalog.list_documents("eval-laws")
    statuses = sorted((d["title"], d["metadata"]["status"]) for d in docs)
    assert statuses == [(ARBITRATION, "历史版本"), (ARBITRATION, CURRENT), (ID_CARD, CURRENT)]
    laws = summary["suites"]["laws"]
    for mode in ("bm25", "dense", "hybrid"):
        assert {"all", "even (tuned)", "odd (held-out)", "paraphrase"} <= set(laws["articles"][mode])
        assert laws["articles"][mode]["all"]["n"] == 3 and laws["articles"][mode]["paraphrase"]["n"] == 1
        assert laws["articles"][mode]["all"]["not_current@10"] == 0      # the validity filter held
    assert laws["articles"]["bm25"]["all"]["hit@5"] == 1.0
    items = [json.loads(line) for line in (out / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(c["status"] == CURRENT for r in items for chunks in r["retrieval"].values() for c in chunks)
    for name in ("report.md", "report.html", "laws_hits.png", "summary.json"):
        assert (out / name).is_file(), name
    assert "Hit@5" in (out / "report.md").read_text(encoding="utf-8")

    # a question file naming fewer laws: the law no question names leaves the knowledge base
    fewer = _write(tmp_path / "fewer.jsonl", [json.loads(line) for line in data.read_text(encoding="utf-8")
                                              .splitlines()[:2]])
    run_suite(c, RunOptions("laws", tmp_path / "run2", data=fewer))
    assert {d["title"] for d in c.store.catalog.list_documents("eval-laws")} == {ARBITRATION}
