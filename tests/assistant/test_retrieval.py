"""Hybrid retrieval and the BM25 index: incremental updates equal a full rebuild, the saved index reloads, a catalog
version moved on by another process triggers a rebuild; fused hits carry both ranks; several knowledge bases."""
from __future__ import annotations

import pytest

from assistant.components.store.bm25 import BM25Index, tokenize
from assistant.components.store.catalog import CatalogError
from assistant.filters import Filters
from assistant.services.access import LOCAL_ADMIN
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


def ranking(idx: BM25Index, query: str) -> list[tuple[str, float]]:
    return idx.search(tokenize(query), 100)


def assert_same_ranking(a: BM25Index, b: BM25Index) -> None:
    assert len(a) == len(b)
    for q in QUERIES:
        ra, rb = ranking(a, q), ranking(b, q)
        assert [cid for cid, _ in ra] == [cid for cid, _ in rb], q
        assert [s for _, s in ra] == pytest.approx([s for _, s in rb], rel=1e-9), q


def test_index_add_remove_equals_rebuild():
    chunks = {f"{d}#{i}": tokenize(line) for d, (_, text) in CORPUS.items() for i, line in enumerate(text.splitlines())}
    incremental = BM25Index()
    for cid, toks in chunks.items():
        incremental.add(cid, toks, {"doc_id": cid.split("#")[0]})
    removed = ["parking#1", "fund#0", "garbage#0"]
    for cid in removed:
        incremental.remove(cid)
    incremental.add("elderly#0", chunks["elderly#0"], {"doc_id": "elderly"})     # re-add replaces, no double count
    incremental.add("parking#9", tokenize("停车场收费公示"), {"doc_id": "parking"})
    rebuilt = BM25Index()
    for cid, toks in {**{c: t for c, t in chunks.items() if c not in removed},
                      "parking#9": tokenize("停车场收费公示")}.items():
        rebuilt.add(cid, toks, {"doc_id": cid.split("#")[0]})
    assert_same_ranking(incremental, rebuilt)
    assert all(cid not in {c for c, _ in ranking(incremental, q)} for q in QUERIES for cid in removed)
    assert incremental.total_len == rebuilt.total_len


def test_index_search_respects_keep_predicate_and_n():
    idx = BM25Index()
    for d in CORPUS:
        idx.add(d, tokenize(CORPUS[d][1]), {"doc_id": d, "status": "已废止" if d == "parking" else "现行有效"})
    assert ranking(idx, "停车收费")[0][0] == "parking"
    kept = idx.search(tokenize("停车收费"), 10, keep=lambda m: m["status"] == "现行有效")
    assert "parking" not in {c for c, _ in kept}
    assert len(idx.search(tokenize("收费 登记"), 1)) == 1
    assert idx.search([], 10) == [] and BM25Index().search(tokenize("停车"), 10) == []


def test_store_incremental_updates_equal_a_rebuild(tmp_path):
    data = tmp_path / "data"
    c = make_container(data)
    kbs = c.knowledge_bases
    assert kbs.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    kbs.delete_document("kb", "marriage", principal=LOCAL_ADMIN)
    live = c.store.bm25.index("kb")                          # loaded now: later changes are applied incrementally
    assert live.version == c.store.catalog.kb_version("kb")
    changed = SourceDocument("parking", "停车收费指南", "parking.txt", "第一条 路内停车每小时收费三元。")
    assert kbs.ingest_documents("kb", [changed], principal=LOCAL_ADMIN).results[0].status == "replaced"
    assert kbs.ingest_documents("kb", [SourceDocument("new", "新规", "new.txt", "停车场收费公示制度。")], principal=LOCAL_ADMIN).ok
    assert c.store.bm25.index("kb") is live                  # updated in place, not rebuilt
    assert live.version == c.store.catalog.kb_version("kb")
    (data / "bm25" / "kb.json").unlink(missing_ok=True)      # force a rebuild from the catalog
    rebuilt = make_container(data).store.bm25.index("kb")
    assert rebuilt is not live and rebuilt.version == live.version
    assert_same_ranking(live, rebuilt)
    top = ranking(rebuilt, "停车收费")
    assert top and all(not cid.startswith("marriage") for cid, _ in ranking(rebuilt, "婚姻登记"))


def test_the_saved_index_reloads_without_rebuilding(tmp_path, monkeypatch):
    data = tmp_path / "data"
    c = make_container(data)
    assert c.knowledge_bases.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    expected = [h.chunk_id for h in c.search.search("高龄津贴", ["kb"], mode="bm25", principal=LOCAL_ADMIN).hits]
    assert expected and (data / "bm25" / "kb.json").exists()
    fresh = make_container(data)
    monkeypatch.setattr(type(fresh.store.bm25), "_rebuild",
                        lambda *a, **k: pytest.fail("the persisted index should have been loaded"))
    assert [h.chunk_id for h in fresh.search.search("高龄津贴", ["kb"], mode="bm25",
                                                    principal=LOCAL_ADMIN).hits] == expected


def test_other_process_changes_trigger_a_rebuild(tmp_path, monkeypatch):
    data = tmp_path / "data"
    reader = make_container(data)
    assert reader.knowledge_bases.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    assert reader.search.search("公示制度", ["kb"], mode="bm25", principal=LOCAL_ADMIN).hits == []
    writer = make_container(data)                            # another process on the same data directory
    report = writer.knowledge_bases.ingest_documents("kb", [SourceDocument("new", "新规", "n.txt", "停车场收费公示制度。")],
                                                     principal=LOCAL_ADMIN)
    assert report.ok
    writer.knowledge_bases.delete_document("kb", "elderly", principal=LOCAL_ADMIN)
    hits = reader.search.search("公示制度", ["kb"], mode="bm25", principal=LOCAL_ADMIN).hits
    assert [h.doc_id for h in hits][:1] == ["new"]
    assert reader.search.search("高龄津贴", ["kb"], mode="bm25", principal=LOCAL_ADMIN).hits == []
    assert reader.store.bm25.index("kb").version == writer.store.catalog.kb_version("kb")


@pytest.mark.parametrize("garbage", [b"not json", b'{"chunks": {"ids": [1]}, "documents": []}', b"[]"])
def test_corrupt_or_stale_index_is_rebuilt(tmp_path, garbage):
    data = tmp_path / "data"
    c = make_container(data)
    assert c.knowledge_bases.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    expected = [h.chunk_id for h in c.search.search("住房公积金", ["kb"], mode="bm25", principal=LOCAL_ADMIN).hits]
    saved = data / "bm25" / "kb.json"
    saved.write_bytes(garbage)
    assert [h.chunk_id for h in make_container(data).search.search("住房公积金", ["kb"], mode="bm25",
                                                                   principal=LOCAL_ADMIN).hits] == expected
    assert saved.read_bytes() != garbage                     # the rebuilt index was saved again


def test_a_pickle_in_the_data_directory_is_never_loaded(tmp_path):
    """#14 case 15: the index was pickle.load-ed from the data directory, so whoever could write there ran code."""
    import pickle

    data = tmp_path / "data"
    c = make_container(data)
    assert c.knowledge_bases.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (data / "bm25" / "kb.pkl").write_bytes(pickle.dumps(Payload()))
    (data / "bm25" / "kb.json").unlink(missing_ok=True)
    assert make_container(data).search.search("住房公积金", ["kb"], mode="bm25", principal=LOCAL_ADMIN).hits
    assert not marker.exists() and not (data / "bm25" / "kb.pkl").exists()


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


def test_term_weights_rank_rare_and_unseen_terms_highest():
    idx = BM25Index()
    for d in CORPUS:
        idx.add(d, tokenize(CORPUS[d][1]), {"doc_id": d})
    w = idx.term_weights(["登记", "津贴", "最低工资"])
    assert w["最低工资"] > w["津贴"] > w["登记"] > 0        # unseen > in one document > in three


def test_idf_coverage_discounts_passages_that_share_only_common_terms(container):
    assert container.knowledge_bases.ingest_documents("kb", [doc(d) for d in CORPUS], principal=LOCAL_ADMIN).ok
    searcher, s = container.searcher, container.settings.retrieval

    def best_coverage(query: str) -> float:
        return max(h.coverage for h in searcher.search(query, ["kb"]).hits)

    s.coverage_weighting = None
    uniform = {q: best_coverage(q) for q in ("登记的最低工资", "高龄津贴")}
    s.coverage_weighting = "idf"
    idf = {q: best_coverage(q) for q in ("登记的最低工资", "高龄津贴")}
    assert 0 < idf["登记的最低工资"] < uniform["登记的最低工资"]   # 登记 matched, the key term nowhere
    assert idf["高龄津贴"] == uniform["高龄津贴"] == 1.0              # every term present: full coverage either way
