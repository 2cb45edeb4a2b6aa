"""Hybrid retrieval and the FTS5 lexical index: incremental updates equal a rebuild, CJK tokens match whole, FTS
syntax in a query is text, filters in SQL, other processes' writes seen at once, old catalogs migrated; fused hits
carry both ranks; several knowledge bases."""
from __future__ import annotations

import pytest

from assistant.components.store.tokens import tokenize
from assistant.components.store.catalog import CatalogError
from assistant.filters import Filters
from assistant.services.access import LOCAL_ADMIN, scope
from conftest import make_container
from ingest.loaders import SourceDocument

CORPUS = {
    "parking": ("停车收费指南", "第一条 路内停车每小时收费五元。\n第二条 夜间停车免费，节假日停车收费减半。"),
    "elderly": ("养老补贴办法", "第一条 年满八十周岁的老年人可以申请高龄津贴。\n第二条 高龄津贴按月发放。"),
    "fund": ("公积金提取指南", "职工购房可以提取住房公积金。提取住房公积金应当提交购房合同。"),
    "marriage": ("婚姻登记须知", "结婚登记需要双方当事人共同到婚姻登记机关办理。"),
    "passport": ("护照办理指南", "申请普通护照应当提交近期免冠照片和居民身份证。"),
    "garbage": ("垃圾分类通知", "居民应当将厨余垃圾投放到绿色垃圾桶，可回收物投放到蓝色垃圾桶。"),
    "ebike": ("电动自行车登记", "电动自行车应当在购买之日起三十日内办理登记，登记免收费用。"),
}
QUERIES = ["停车收费", "高龄津贴", "住房公积金 提取", "登记", "垃圾桶", "收费 登记 证件"]


def doc(doc_id: str, **meta) -> SourceDocument:
    title, text = CORPUS[doc_id]
    return SourceDocument(doc_id, title, f"{doc_id}.txt", text, metadata=meta)


def ranking(c, query: str, kb: str = "kb") -> list[tuple[str, float]]:
    return c.store.bm25.index(kb).search(tokenize(query), 100)


def assert_same_ranking(a, b, kb: str = "kb") -> None:
    for q in QUERIES:
        ra, rb = ranking(a, q, kb), ranking(b, q, kb)
        assert [cid for cid, _ in ra] == [cid for cid, _ in rb], q
        assert [s for _, s in ra] == pytest.approx([s for _, s in rb], rel=1e-9), q


def test_incremental_index_equals_a_rebuild(tmp_path):
    """Replace, delete and add keep the FTS5 tables exactly what a fill from the stored tokens gives."""
    data = tmp_path / "data"
    c = make_container(data)
    kbs = c.knowledge_bases
    assert kbs.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    kbs.delete_document("kb", "marriage", principal=LOCAL_ADMIN)
    changed = SourceDocument("parking", "停车收费指南", "parking.txt", "第一条 路内停车每小时收费三元。")
    assert kbs.ingest_documents("kb", [changed], principal=LOCAL_ADMIN).results[0].status == "replaced"
    assert kbs.ingest_documents("kb", [SourceDocument("new", "新规", "new.txt", "停车场收费公示制度。")],
                                principal=LOCAL_ADMIN).ok
    rebuilt = make_container(tmp_path / "other")
    assert rebuilt.knowledge_bases.ingest_documents(
        "kb", [doc(d) for d in CORPUS if d not in ("marriage", "parking")] +
        [changed, SourceDocument("new", "新规", "new.txt", "停车场收费公示制度。")], principal=LOCAL_ADMIN).ok
    assert_same_ranking(c, rebuilt)
    before = {q: ranking(c, q) for q in QUERIES}
    c.store.catalog.rebuild_lexical("kb")
    assert {q: ranking(c, q) for q in QUERIES} == before
    assert all(not cid.startswith("marriage") for cid, _ in ranking(c, "婚姻登记"))
    assert not any("五元" in h.text for h in c.search.search("每小时收费五元", ["kb"], mode="bm25",
                                                         principal=LOCAL_ADMIN).hits)
    for level in (c.store.bm25.index("kb"), c.store.bm25.doc_index("kb")):
        assert level.search([], 10) == [] and level.search(tokenize("停车"), 0) == []
    assert [d for d, _ in c.store.bm25.doc_index("kb").search(tokenize("停车收费"), 10)][:1] == ["parking"]


def test_cjk_tokens_match_whole(container):
    """The FTS5 tokenizer splits on whitespace only: a jieba token is one term (no prefix, no part of a word,
    punctuation inside a token kept)."""
    assert container.knowledge_bases.ingest_documents("kb", [SourceDocument(
        "law", "法", "law.txt", "中华人民共和国仲裁法 增长3.5亿元")], principal=LOCAL_ADMIN).ok
    idx = container.store.bm25.index("kb")
    assert idx.search(["中华人民共和国"], 5) and idx.search(["3.5"], 5)
    assert idx.search(["中华人民"], 5) == [] and idx.search(["中华人民共和"], 5) == []
    assert idx.search(["3"], 5) == [] and idx.search(["5"], 5) == []     # not split at the point
    n, dfs = container.store.catalog.document_frequencies("kb", ["中华人民共和国", "3.5", "中华人民"])
    assert dfs == {"中华人民共和国": 1, "3.5": 1, "中华人民": 0} and n == container.store.catalog.vector_counts("kb")[0]


@pytest.mark.parametrize("query", ['"', '""', '*', '停车*', 'NEAR', 'NEAR(停车 收费)', 'OR', 'AND', 'NOT', '-', '-停车',
                                   'tokens:停车', '^停车', '(停车', '停车)', '{tokens}: 停车', "'; DROP TABLE chunks; --",
                                   '\x00'])
def test_fts_query_syntax_in_a_query_is_text(container, query):
    """Quotes, *, NEAR, OR, -, column filters in a token are matched as text: no syntax error, no injection."""
    assert container.knowledge_bases.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    idx = container.store.bm25.index("kb")
    for tokens in ([query], [query, "停车"], tokenize(query)):
        hits = idx.search(tokens, 10)
        assert all(cid.startswith("parking") for cid, _ in hits)          # only 停车 itself can match
        assert bool(hits) == ("停车" in tokens)
        idx.term_weights(tokens)
        container.store.bm25.doc_index("kb").search(tokens, 10)
    container.search.search(query + " 停车", ["kb"], principal=LOCAL_ADMIN)
    assert container.store.catalog.vector_counts("kb")[0] > 0            # the chunks are still there


def test_lexical_filters_are_sql_and_agree_with_the_predicate(container):
    kbs = container.knowledge_bases
    docs = [doc("parking", status="已废止", agency="示范市交通局"), doc("fund", agency="示范市公积金中心"),
            doc("ebike", agency="示范市公安局", date="2024-05-01")]
    assert kbs.ingest_documents("kb", docs, principal=LOCAL_ADMIN).ok
    idx, chunks = container.store.bm25.index("kb"), container.store.catalog
    for items in ([], ["status=*"], ["status=已废止"], ["agency=示范市公安局"], ["date_from=2024-01"],
                  ["date_to=2023", "status=*"], ["doc_ids=fund,parking", "status=*"]):
        flt = Filters.parse(items).with_default_status(["现行有效"])
        got = {cid for cid, _ in idx.search(tokenize("收费 登记 公积金 停车"), 100, flt)}
        every = idx.search(tokenize("收费 登记 公积金 停车"), 100)
        meta = chunks.get_chunks("kb", [cid for cid, _ in every])
        assert got == {cid for cid, _ in every if flt.matches(meta[cid]["metadata"])}, items


def test_other_process_changes_are_seen_at_once(tmp_path):
    data = tmp_path / "data"
    reader = make_container(data)
    assert reader.knowledge_bases.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    assert reader.search.search("公示制度", ["kb"], mode="bm25", principal=LOCAL_ADMIN).hits == []
    writer = make_container(data)                            # another process on the same data directory
    report = writer.knowledge_bases.ingest_documents("kb", [SourceDocument("new", "新规", "n.txt", "停车场收费公示制度。")],
                                                     principal=LOCAL_ADMIN, wait=False)
    assert report.ok
    writer.knowledge_bases.delete_document("kb", "elderly", principal=LOCAL_ADMIN)
    hits = reader.search.search("公示制度", ["kb"], mode="bm25", principal=LOCAL_ADMIN).hits
    assert [h.doc_id for h in hits][:1] == ["new"]
    assert reader.search.search("高龄津贴", ["kb"], mode="bm25", principal=LOCAL_ADMIN).hits == []


def test_a_catalog_from_before_fts5_is_migrated_and_old_index_files_are_never_read(tmp_path):
    """#14 case 15 stays fixed: a pickle (or JSON) index in the data directory is deleted unread."""
    import pickle
    import sqlite3

    data = tmp_path / "data"
    c = make_container(data)
    assert c.knowledge_bases.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    expected = [(h.chunk_id, h.bm25_score) for h in c.search.search("住房公积金", ["kb"], mode="bm25",
                                                                  principal=LOCAL_ADMIN).hits]
    assert expected
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (data / "bm25").mkdir()
    (data / "bm25" / "kb.pkl").write_bytes(pickle.dumps(Payload()))
    (data / "bm25" / "kb.json").write_text('{"chunks": {}}', encoding="utf-8")
    db = sqlite3.connect(data / "catalog.sqlite3")           # what a catalog of the previous release lacks
    for table in ("lex_v_kb", "lex_d_kb", "lex_c_kb", "alembic_version"):
        db.execute(f'DROP TABLE "{table}"')
    db.commit()
    db.close()
    fresh = make_container(data)
    assert [(h.chunk_id, h.bm25_score) for h in fresh.search.search("住房公积金", ["kb"], mode="bm25",
                                                                  principal=LOCAL_ADMIN).hits] == expected
    assert not marker.exists() and not (data / "bm25").exists()


def test_hybrid_hits_carry_both_ranks_and_fused_scores(container):
    assert container.knowledge_bases.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    container.settings.retrieval.weights = {"bm25": 1.0, "dense": 1.0}   # plain two-list RRF
    result = container.search.search("路内停车每小时收费", ["kb"], top_k=5, principal=LOCAL_ADMIN)
    hits = result.hits
    assert hits[0].doc_id == "parking"
    assert hits[0].bm25_rank == 1 and hits[0].dense_rank == 1
    assert hits[0].bm25_score > 0 and 0 < hits[0].dense_score <= 1
    k = container.settings.retrieval.rrf_k
    for h in hits:
        assert h.bm25_rank or h.dense_rank
        expected = sum(1 / (k + r) for r in (h.bm25_rank, h.dense_rank) if r)
        assert h.score == pytest.approx(expected)
        assert h.text and h.metadata["doc_id"] == h.doc_id and h.kb == "kb"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert {"bm25_ms", "dense_ms"} <= set(result.timings)
    d = hits[0].to_dict()
    assert d["scores"]["bm25_rank"] == 1 and d["scores"]["dense_rank"] == 1 and d["title"] == "停车收费指南"
    # single-retriever modes carry only their own rank
    assert all(h.dense_rank is None for h in container.search.search("停车", ["kb"], mode="bm25",
                                                                     principal=LOCAL_ADMIN).hits)
    assert all(h.bm25_rank is None for h in container.search.search("停车", ["kb"], mode="dense",
                                                                    principal=LOCAL_ADMIN).hits)


def test_search_over_several_knowledge_bases(container):
    kbs = container.knowledge_bases
    assert kbs.ingest_documents("city", [doc("parking"), doc("garbage"), doc("fund"), doc("marriage")],
                                principal=LOCAL_ADMIN).ok
    assert kbs.ingest_documents("county", [doc("elderly"), doc("passport"), doc("ebike"),
                                           SourceDocument("county-parking", "县停车办法", "cp.txt",
                                                          "县城路内停车每小时收费两元。")], principal=LOCAL_ADMIN).ok
    hits = container.search.search("路内停车收费", ["city", "county"], top_k=10, principal=LOCAL_ADMIN).hits
    by_kb = {h.kb for h in hits}
    assert by_kb == {"city", "county"}
    assert {"parking", "county-parking"} <= {h.doc_id for h in hits[:3]}
    assert all(h.metadata["kb"] == h.kb for h in hits)
    only_city = container.search.search("路内停车收费", ["city"], top_k=10, principal=LOCAL_ADMIN).hits
    assert {h.kb for h in only_city} == {"city"}
    # a filter applies across every knowledge base searched
    flt = Filters.parse(["doc_ids=county-parking"])
    assert {h.doc_id for h in container.search.search("停车", ["city", "county"], flt,
                                                      principal=LOCAL_ADMIN).hits} == {"county-parking"}


def test_search_service_rejects_bad_requests(container):
    assert container.knowledge_bases.ingest_documents("kb", [doc("parking")], principal=LOCAL_ADMIN).ok
    with pytest.raises(ValueError, match="empty"):
        container.search.search("  ", ["kb"], principal=LOCAL_ADMIN)
    with pytest.raises(ValueError, match="mode"):
        container.search.search("停车", ["kb"], mode="fuzzy", principal=LOCAL_ADMIN)
    with pytest.raises(CatalogError, match="nope"):
        container.search.search("停车", ["nope"], principal=LOCAL_ADMIN)


def test_term_weights_rank_rare_and_unseen_terms_highest(container):
    assert container.knowledge_bases.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    w = container.store.bm25.index("kb").term_weights(["应当", "津贴", "最低工资"])
    assert w["最低工资"] > w["津贴"] > w["应当"] > 0        # unseen > in one document > in four


def test_idf_coverage_discounts_passages_that_share_only_common_terms(container):
    assert container.knowledge_bases.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    searcher, s = container.searcher, container.settings.retrieval

    def best_coverage(query: str) -> float:
        return max(h.coverage for h in searcher.search(query, ["kb"], scope(LOCAL_ADMIN, ["kb"])[1]).hits)

    s.coverage_weighting = None
    uniform = {q: best_coverage(q) for q in ("登记的最低工资", "高龄津贴")}
    s.coverage_weighting = "idf"
    idf = {q: best_coverage(q) for q in ("登记的最低工资", "高龄津贴")}
    assert 0 < idf["登记的最低工资"] < uniform["登记的最低工资"]   # 登记 matched, the key term nowhere
    assert idf["高龄津贴"] == uniform["高龄津贴"] == 1.0              # every term present: full coverage either way


def test_a_bounded_query_leaves_out_the_commonest_tokens_first(tmp_path):
    """Past lexical_max_postings rows the commonest query tokens are dropped (rarest kept), so a token in every
    chunk cannot make a query score the whole index; under the bound nothing changes."""
    c = make_container(tmp_path / "data", GOV_ASSISTANT_RETRIEVAL__LEXICAL_MAX_POSTINGS="3")
    assert c.knowledge_bases.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    idx = c.store.bm25.index("kb")
    _, dfs = c.store.catalog.document_frequencies("kb", ["登记", "应当", "停车"])
    assert dfs["应当"] >= 3 and dfs["停车"] <= 2
    assert idx.bounded(["应当", "停车", "应当"]) == ["停车"]
    assert idx.bounded(["应当"]) == ["应当"]                        # one token: always searched
    assert all(cid.startswith("parking") for cid, _ in idx.search(["应当", "停车"], 10))
    idx.max_postings = 0
    assert idx.bounded(["应当", "停车"]) == ["应当", "停车"]
    assert any(not cid.startswith("parking") for cid, _ in idx.search(["应当", "停车"], 10))
