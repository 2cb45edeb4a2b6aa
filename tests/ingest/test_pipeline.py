"""The ingest pipeline: idempotent re-runs, replace-on-change without stale chunks or vectors, duplicates,
atomicity per document under a crash, and metadata validation naming the field."""
from __future__ import annotations

import json

import pytest

from assistant.filters import Filters
from assistant.services.access import LOCAL_ADMIN
from ingest.loaders import SourceDocument
from assistant.settings import PROJECT_ROOT
from assistant.pipeline import normalise_metadata

KB = "pipe"
FILES = {
    "parking.txt": "示范市停车收费办法\n第一条 路内停车每小时收费五元。\n第二条 夜间停车免费，节假日停车收费减半。",
    "elderly.txt": "示范市养老补贴办法\n第一条 年满八十周岁的老年人可以申请高龄津贴。\n第二条 高龄津贴按月发放。",
    "fund.txt": "公积金提取指南\n职工购房可以提取住房公积金，提取时应当提交购房合同。",
    "marriage.txt": "婚姻登记须知\n结婚登记需要双方当事人共同到婚姻登记机关办理。",
    "passport.txt": "护照办理指南\n申请普通护照应当提交近期免冠照片和居民身份证。",
    "garbage.txt": "垃圾分类通知\n居民应当将厨余垃圾投放到绿色垃圾桶。",
}


@pytest.fixture
def docs_dir(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in FILES.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def chunk_count(c, kb=KB) -> int:
    return sum(d["n_chunks"] for d in c.store.catalog.list_documents(kb) if d["state"] == "complete")


def catalog_chunk_ids(c, kb=KB) -> set[str]:
    return set(c.store.catalog.chunk_ids(kb))


def vector_ids(c, kb=KB) -> set[str]:
    return set(c.store.vectors.collection(kb).get(include=[])["ids"])


def hit_texts(c, query, mode, **kw):
    return [h.text for h in c.search.search(query, [KB], mode=mode, top_k=10, principal=LOCAL_ADMIN, **kw).hits]


def test_reingest_is_idempotent(container, docs_dir):
    first = container.knowledge_bases.ingest_paths(KB, [docs_dir], principal=LOCAL_ADMIN)
    assert first.counts == {"added": len(FILES)}
    chunks, vectors = chunk_count(container), container.store.vectors.count(KB)
    version = container.store.catalog.kb_version(KB)
    assert chunks == vectors == first.chunks > len(FILES)
    second = container.knowledge_bases.ingest_paths(KB, [docs_dir], principal=LOCAL_ADMIN)
    assert second.counts == {"unchanged": len(FILES)}
    assert second.chunks == 0
    assert [r.doc_id for r in second.results] == [r.doc_id for r in first.results]
    assert [r.chunks for r in second.results] == [r.chunks for r in first.results]
    assert chunk_count(container) == chunks and container.store.vectors.count(KB) == vectors
    assert container.store.catalog.kb_version(KB) == version          # nothing was rewritten


def test_changed_file_replaces_its_old_version(container, docs_dir):
    kbs = container.knowledge_bases
    kbs.ingest_paths(KB, [docs_dir], principal=LOCAL_ADMIN)
    path = docs_dir / "parking.txt"
    doc_id = kbs.ingest_paths(KB, [path], principal=LOCAL_ADMIN).results[0].doc_id
    old_ids = {ch["chunk_id"] for ch in kbs.document(KB, doc_id, with_chunks=True, principal=LOCAL_ADMIN)["chunks"]}
    assert any("每小时收费五元" in t for t in hit_texts(container, "每小时收费五元", "bm25"))

    path.write_text("示范市停车收费办法\n第一条 路内停车每半小时收费三元。\n第二条 夜间停车免费。\n第三条 残疾人车辆免费停放。",
                    encoding="utf-8")
    report = kbs.ingest_paths(KB, [path], principal=LOCAL_ADMIN)
    assert [(r.status, r.doc_id, r.chunks) for r in report.results] == [("replaced", doc_id, 3)]
    new_ids = {ch["chunk_id"] for ch in kbs.document(KB, doc_id, with_chunks=True, principal=LOCAL_ADMIN)["chunks"]}
    assert len(new_ids) == 3 and not new_ids & old_ids
    for mode in ("bm25", "dense", "hybrid"):
        texts = hit_texts(container, "路内停车每小时收费五元", mode)
        assert not any("五元" in t for t in texts), mode
        assert any("每半小时收费三元" in t for t in hit_texts(container, "每半小时收费三元", mode)), mode
    # no stale vectors: Chroma holds exactly the catalog's chunks
    assert container.store.vectors.count(KB) == chunk_count(container)
    assert vector_ids(container) == catalog_chunk_ids(container)
    assert not old_ids & vector_ids(container)
    assert kbs.info(KB, principal=LOCAL_ADMIN)["documents"] == len(FILES)


def test_same_content_under_another_path_is_a_duplicate(container, docs_dir, tmp_path):
    kbs = container.knowledge_bases
    first = kbs.ingest_paths(KB, [docs_dir / "fund.txt"], principal=LOCAL_ADMIN).results[0]
    copy = tmp_path / "elsewhere" / "公积金提取指南（转发）.txt"
    copy.parent.mkdir()
    copy.write_bytes((docs_dir / "fund.txt").read_bytes())
    dup = kbs.ingest_paths(KB, [copy], principal=LOCAL_ADMIN).results[0]
    assert dup.status == "duplicate" and dup.doc_id != first.doc_id
    assert first.doc_id in dup.message
    assert [d["doc_id"] for d in kbs.documents(KB, principal=LOCAL_ADMIN)] == [first.doc_id]
    assert container.store.vectors.count(KB) == chunk_count(container) == first.chunks


def _docs():
    return [SourceDocument(f"doc{i}", name, name, text) for i, (name, text) in enumerate(FILES.items(), start=1)]


def _crash_on(monkeypatch, obj, attr, when):
    original = getattr(obj, attr)

    def flaky(*args, **kwargs):
        if when(*args, **kwargs):
            raise RuntimeError("simulated crash")
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, attr, flaky)


@pytest.mark.parametrize("crash_in", ["catalog.commit_document", "catalog.stage_chunks"])
def test_crash_mid_document_leaves_nothing_half_visible(container, monkeypatch, crash_in):
    store = container.store
    owner, attr = crash_in.split(".")
    # the 2nd document of the batch fails after it was marked pending (for commit, after its rows were staged)
    _crash_on(monkeypatch, getattr(store, owner), attr, lambda kb, second, *a, **k: second == "doc2")
    docs = _docs()
    report = container.knowledge_bases.ingest_documents(KB, docs, principal=LOCAL_ADMIN)
    assert [r.status for r in report.results] == ["added", "failed"] + ["added"] * (len(docs) - 2)
    assert "simulated crash" in report.results[1].message and report.results[1].doc_id == "doc2"
    assert not report.ok

    assert store.catalog.get_document(KB, "doc2")["state"] == "pending"
    assert store.catalog.document_chunks(KB, "doc2") == []
    # nothing of it was left: no staged rows, no vectors
    assert store.catalog.staged(KB) == {}
    assert store.vectors.collection(KB).get(where={"doc_id": "doc2"}, include=[])["ids"] == []
    query = "年满八十周岁的老年人可以申请高龄津贴"               # doc2's own text
    for mode in ("bm25", "dense", "hybrid"):
        hits = container.search.search(query, [KB], Filters.parse(["status=*"]), top_k=10, mode=mode,
                                       principal=LOCAL_ADMIN).hits
        assert "doc2" not in {h.doc_id for h in hits}, mode
        assert hits or mode == "bm25"
    # the first and the later documents are complete and searchable
    assert container.search.search("路内停车", [KB], mode="bm25", principal=LOCAL_ADMIN).hits[0].doc_id == "doc1"
    assert container.search.search("厨余垃圾", [KB], mode="bm25", principal=LOCAL_ADMIN).hits[0].doc_id == "doc6"
    info = container.knowledge_bases.info(KB, principal=LOCAL_ADMIN)
    assert info["documents"] == len(docs) - 1 and info["pending_documents"] == 1

    monkeypatch.undo()
    rerun = container.knowledge_bases.ingest_documents(KB, _docs(), principal=LOCAL_ADMIN)
    assert [r.status for r in rerun.results] == ["unchanged", "added"] + ["unchanged"] * (len(docs) - 2)
    assert store.catalog.get_document(KB, "doc2")["state"] == "complete"
    assert container.search.search(query, [KB], mode="bm25", principal=LOCAL_ADMIN).hits[0].doc_id == "doc2"
    assert store.vectors.count(KB) == chunk_count(container)
    assert vector_ids(container) == catalog_chunk_ids(container)


def test_crash_while_replacing_keeps_the_old_version(container, monkeypatch):
    kbs, store = container.knowledge_bases, container.store
    assert kbs.ingest_documents(KB, _docs(), principal=LOCAL_ADMIN).ok
    old = {ch["chunk_id"] for ch in store.catalog.document_chunks(KB, "doc1")}
    _crash_on(monkeypatch, store.catalog, "commit_document", lambda *a, **k: True)
    changed = SourceDocument("doc1", "parking.txt", "parking.txt", "第一条 路内停车每小时收费九元。")
    assert kbs.ingest_documents(KB, [changed], principal=LOCAL_ADMIN).results[0].status == "failed"
    assert {ch["chunk_id"] for ch in store.catalog.document_chunks(KB, "doc1")} == old
    for mode in ("bm25", "dense"):
        texts = hit_texts(container, "路内停车每小时收费", mode)
        assert any("五元" in t for t in texts) and not any("九元" in t for t in texts), mode
    monkeypatch.undo()
    assert kbs.ingest_documents(KB, [changed], principal=LOCAL_ADMIN).results[0].status == "replaced"
    assert any("九元" in t for t in hit_texts(container, "路内停车每小时收费", "bm25"))
    assert vector_ids(container) == catalog_chunk_ids(container)


@pytest.mark.parametrize("meta, field", [({"status": "无效"}, "status"), ({"date": "去年春天"}, "date")])
def test_invalid_metadata_fails_naming_the_field(container, docs_dir, meta, field):
    report = container.knowledge_bases.ingest_paths(KB, [docs_dir / "fund.txt", docs_dir / "garbage.txt"],
                                                    extra_metadata=meta, principal=LOCAL_ADMIN)
    assert [r.status for r in report.results] == ["failed", "failed"]
    assert all(f"'{field}'" in r.message for r in report.results)
    assert container.knowledge_bases.info(KB, principal=LOCAL_ADMIN)["documents"] == 0
    doc = SourceDocument("x", "标题", "x.txt", "正文内容。", metadata=meta)
    result = container.pipeline.ingest_document(KB, doc)
    assert result.status == "failed" and f"'{field}'" in result.message


def test_metadata_normalisation():
    meta = normalise_metadata(SourceDocument("x", "", "dir/关于推进公共数据开放的通知.txt",
                                             "示范市人民政府办公厅关于推进公共数据开放的通知\n示政办发〔2025〕12号\n正文。",
                                             metadata={"date": "2025年3月18日", "status": "已废止"}))
    assert meta["title"] == "示范市人民政府办公厅关于推进公共数据开放的通知"
    assert meta["doc_number"] == "示政办发〔2025〕12号"
    assert meta["date"] == "2025-03-18" and meta["date_int"] == 20250318
    assert meta["status"] == "已废止"
    bare = normalise_metadata(SourceDocument("y", "", "dir/说明.txt", "。。。", extract_metadata=False))
    assert bare == {"title": "说明", "status": "现行有效"}


def test_cli_metadata_applies_to_every_file(container, docs_dir):
    report = container.knowledge_bases.ingest_paths(KB, [docs_dir], extra_metadata={"status": "已废止",
                                                                                    "agency": "示范市政府"},
                                                    principal=LOCAL_ADMIN)
    assert report.ok
    assert container.search.search("路内停车", [KB], principal=LOCAL_ADMIN).hits == []           # repealed: not by default
    hits = container.search.search("路内停车", [KB], Filters.parse(["status=已废止"]), principal=LOCAL_ADMIN).hits
    assert hits and all(h.metadata["status"] == "已废止" and h.metadata["agency"] == "示范市政府" for h in hits)


def test_document_delete_removes_chunks_vectors_and_bm25_entries(container, docs_dir):
    kbs = container.knowledge_bases
    report = kbs.ingest_paths(KB, [docs_dir], principal=LOCAL_ADMIN)
    doc_id = next(r.doc_id for r in report.results if r.source.endswith("marriage.txt"))
    assert container.search.search("婚姻登记", [KB], mode="bm25", principal=LOCAL_ADMIN).hits[0].doc_id == doc_id
    kbs.delete_document(KB, doc_id, principal=LOCAL_ADMIN)
    for mode in ("bm25", "dense"):
        assert doc_id not in {h.doc_id for h in container.search.search("婚姻登记", [KB], mode=mode, top_k=20,
                                                                        principal=LOCAL_ADMIN).hits}
    assert container.store.vectors.collection(KB).get(where={"doc_id": doc_id}, include=[])["ids"] == []
    assert vector_ids(container) == catalog_chunk_ids(container)
    assert kbs.info(KB, principal=LOCAL_ADMIN)["documents"] == len(FILES) - 1


def test_empty_document_fails(container):
    result = container.pipeline.ingest_document(KB, SourceDocument("blank", "空白", "b.txt", "\n  \n"))
    assert result.status == "failed" and result.message == "no text to index"


def test_kb_check_finds_and_repairs_orphan_and_missing_vectors(container, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from assistant.cli import context
    from assistant.cli.main import app

    kbs, store = container.knowledge_bases, container.store
    assert kbs.ingest_documents(KB, _docs(), principal=LOCAL_ADMIN).ok
    assert kbs.check(KB, principal=LOCAL_ADMIN) == {
        "kb": KB, "chunks": chunk_count(container), "vectors": chunk_count(container),
        "orphan_vectors": 0, "pending_vectors": 0, "documents_pending_vectors": [], "documents_missing_vectors": [],
        "pending_documents": [], "interrupted_documents": [], "duplicate_contents": [], "consistent": True}
    # a process killed before the catalog commit of doc2's new version, after staging its rows; an older release
    # had written their vectors by then (orphans: no committed chunk has their ids)
    _crash_on(monkeypatch, container.pipeline, "discard_uncommitted", lambda *a, **k: True)
    _crash_on(monkeypatch, store.catalog, "commit_document", lambda *a, **k: True)
    assert kbs.ingest_documents(KB, [SourceDocument("doc2", "e.txt", "e.txt", "第一条 高龄津贴按季度发放。")], principal=LOCAL_ADMIN
                                ).results[0].status == "failed"
    monkeypatch.undo()
    staged = store.catalog.staged(KB)["doc2"]
    store.vectors.upsert(KB, staged, [[0.1] * len(container.embeddings.embed_query("x"))] * len(staged),
                         [{"doc_id": "doc2"}] * len(staged), ["x"] * len(staged))
    # and doc3's vectors lost (a Chroma server restored from an older backup)
    lost = [ch["chunk_id"] for ch in store.catalog.document_chunks(KB, "doc3")]
    store.vectors.delete_ids(KB, lost)
    report = kbs.check(KB, principal=LOCAL_ADMIN)
    assert report["orphan_vectors"] >= 1 and report["documents_missing_vectors"] == ["doc3"]
    assert report["pending_documents"] == ["doc2"] and report["interrupted_documents"] == ["doc2"]
    assert not report["consistent"]

    fixed = kbs.check(KB, repair=True, principal=LOCAL_ADMIN)
    assert fixed["repaired"] == {"orphan_vectors_deleted": report["orphan_vectors"], "vectors_marked_pending": len(lost),
                                 "vectors_written": len(lost), "pending_vectors_left": 0}
    assert kbs.check(KB, principal=LOCAL_ADMIN)["consistent"] and vector_ids(container) == catalog_chunk_ids(container)
    assert container.search.search(FILES["fund.txt"].split("\n")[1], [KB], mode="dense",
                                   principal=LOCAL_ADMIN).hits[0].doc_id == "doc3"

    # the CLI: exit 1 while inconsistent, JSON report either way
    monkeypatch.setattr(context, "container", lambda: container)
    store.vectors.delete_ids(KB, [ch["chunk_id"] for ch in store.catalog.document_chunks(KB, "doc3")])
    res = CliRunner().invoke(app, ["kb", "check", KB])
    assert res.exit_code == 1 and '"documents_missing_vectors": [\n  "doc3"\n ]' in res.output
    res = CliRunner().invoke(app, ["kb", "check", KB, "--repair"])
    assert res.exit_code == 0 and f'"vectors_written": {len(lost)}' in res.output


# -- the 文件信息 passage: one metadata chunk per document (issue #13 item 4) -----------------------------------
SEED = PROJECT_ROOT.parent / "shared" / "data" / "seed" / "shanghai_data_bureau_2025_work_points.md"


def meta_chunks(c, doc_id, kb=KB):
    return [ch for ch in c.store.catalog.document_chunks(kb, doc_id) if ch["metadata"].get("passage") == "metadata"]


@pytest.mark.skipif(not SEED.exists(), reason="needs ../shared/data/seed")
def test_seed_document_gets_a_metadata_passage_that_answers_who_and_when(container):
    kbs = container.knowledge_bases
    first = kbs.ingest_paths(KB, [SEED], principal=LOCAL_ADMIN).results[0]
    assert first.status == "added"
    chunks = container.store.catalog.document_chunks(KB, first.doc_id)
    assert first.chunks == len(chunks)
    (info,) = meta_chunks(container, first.doc_id)
    assert info == chunks[-1] and info["position"] == len(chunks) - 1     # after the body: its numbering stays
    assert info["text"] == ("《市数据局2025年工作要点》文件信息。发文机关（印发单位）：上海市数据局办公室；"
                            "成文日期（印发日期）：2025年3月10日；文种：工作要点；效力状态：现行有效。"
                            "本文件由上海市数据局办公室于2025年3月10日印发。")
    meta = info["metadata"]
    assert meta["heading"] == "《市数据局2025年工作要点》文件信息" and "article" not in meta
    # it carries the document's metadata like every chunk (filters, citation labels)
    assert {k: meta[k] for k in ("title", "agency", "date", "doc_type", "status", "doc_id")} == {
        "title": "市数据局2025年工作要点", "agency": "上海市数据局办公室", "date": "2025-03-10",
        "doc_type": "工作要点", "status": "现行有效", "doc_id": first.doc_id}
    assert info["chunk_id"].startswith(f"{first.doc_id}#")
    assert sum("上海市数据局办公室" in ch["text"] and "文件信息" in ch["text"] for ch in chunks) == 1

    for mode in ("bm25", "dense", "hybrid"):
        hits = container.search.search("哪个单位印发 哪天", [KB], top_k=5, mode=mode, principal=LOCAL_ADMIN).hits
        assert hits[0].chunk_id == info["chunk_id"], mode
    answer = container.qa.ask("这份工作要点是哪个单位在哪天印发的？", [KB], principal=LOCAL_ADMIN)
    assert not answer.refused
    cited = [c for c in answer.citations if c.metadata.get("passage") == "metadata"]
    assert cited and cited[0].label == "《市数据局2025年工作要点》" and "2025年3月10日" in cited[0].text

    # unchanged re-ingest: nothing added or rewritten
    version, ids = container.store.catalog.kb_version(KB), catalog_chunk_ids(container)
    again = kbs.ingest_paths(KB, [SEED], principal=LOCAL_ADMIN)
    assert again.counts == {"unchanged": 1} and again.chunks == 0 and again.results[0].chunks == len(chunks)
    assert container.store.catalog.kb_version(KB) == version and catalog_chunk_ids(container) == ids
    assert vector_ids(container) == ids

    # re-indexing from the stored chunks' text keeps exactly one passage (it is not taken for body text)
    kbs.reindex_document(KB, first.doc_id, principal=LOCAL_ADMIN)
    after = container.store.catalog.document_chunks(KB, first.doc_id)
    assert [ch["text"] for ch in meta_chunks(container, first.doc_id)] == [info["text"]]
    assert sum("文件信息" in ch["text"] for ch in after) == 1
    assert vector_ids(container) == catalog_chunk_ids(container)


def test_changed_metadata_replaces_the_passage_and_validity_filters_it(container):
    kbs = container.knowledge_bases
    text = "第一条 路内停车每小时收费五元。\n第二条 夜间停车免费。"
    stated = {"agency": "示范市交通局", "doc_number": "示交发〔2025〕1号", "date": "2025-01-02"}
    doc = SourceDocument("parking", "示范市停车收费办法", "p.txt", text, metadata=stated)
    assert kbs.ingest_documents(KB, [doc], principal=LOCAL_ADMIN).results[0].chunks == 3          # 2 articles + 文件信息
    (old,) = meta_chunks(container, "parking")
    assert old["text"] == ("《示范市停车收费办法》文件信息。文号（发文字号）：示交发〔2025〕1号；发文机关（印发单位）：示范市交通局；"
                           "成文日期（印发日期）：2025年1月2日；文种：办法；效力状态：现行有效。"
                           "本文件由示范市交通局于2025年1月2日印发。")
    query = "示范市停车收费办法 文号 发文机关 成文日期"
    for mode in ("bm25", "hybrid"):
        assert hit_texts(container, query, mode)[0] == old["text"], mode
    assert old["text"] in hit_texts(container, query, "dense")         # the hashing embedder ranks loosely

    repealed = SourceDocument("parking", "示范市停车收费办法", "p.txt", text, metadata={**stated, "status": "已废止"})
    result = kbs.ingest_documents(KB, [repealed], principal=LOCAL_ADMIN).results[0]
    assert (result.status, result.chunks) == ("replaced", 3)
    (new,) = meta_chunks(container, "parking")
    assert new["chunk_id"] != old["chunk_id"] and "效力状态：已废止" in new["text"]
    assert new["metadata"]["status"] == "已废止"
    assert old["chunk_id"] not in vector_ids(container) and vector_ids(container) == catalog_chunk_ids(container)
    for mode in ("bm25", "dense", "hybrid"):   # validity applies to the passage like to every chunk
        assert container.search.search(query, [KB], top_k=10, mode=mode, principal=LOCAL_ADMIN).hits == [], mode
        hits = container.search.search(query, [KB], Filters.parse(["status=已废止"]), top_k=10, mode=mode,
                                       principal=LOCAL_ADMIN).hits
        assert new["chunk_id"] in [h.chunk_id for h in hits] and {h.metadata["status"] for h in hits} == {"已废止"}


def test_no_metadata_passage_without_number_agency_or_date(container, docs_dir):
    report = container.knowledge_bases.ingest_paths(KB, [docs_dir], principal=LOCAL_ADMIN)
    assert report.ok and all(meta_chunks(container, r.doc_id) == [] for r in report.results)
    assert report.chunks == chunk_count(container)


def test_jsonl_lines_without_a_title_get_no_passage_named_after_the_file(container, tmp_path):
    path = tmp_path / "corpus.jsonl"
    rows = [{"docid": "untitled", "text": "各地要抓好春耕备耕，保障农资供应，确保粮食生产稳定，"
                                          "做好种子、化肥、农药等农资的调运和供应，不误农时，为全年粮食丰收打好基础。"
                                          "\n2020年2月3日"},
            {"docid": "titled", "title": "春耕通知", "text": "各地要抓好春耕备耕。\n示范市农业局\n2020年2月3日"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert container.knowledge_bases.ingest_paths(KB, [path], principal=LOCAL_ADMIN).ok
    assert meta_chunks(container, "untitled") == []     # its label is no title a 文件信息 passage could state
    # named by its opening clause, not by the file ("corpus"): citations read 《各地要抓好春耕备耕》
    docs = {d["doc_id"]: d for d in container.knowledge_bases.documents(KB, principal=LOCAL_ADMIN)}
    assert docs["untitled"]["title"] == "各地要抓好春耕备耕" and docs["titled"]["title"] == "春耕通知"
    (info,) = meta_chunks(container, "titled")
    assert info["text"].startswith("《春耕通知》文件信息。") and "2020年2月3日" in info["text"]
