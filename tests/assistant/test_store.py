"""The store's two stages (#15): a document is searchable by keywords when its text commits, its vectors fill in
behind (outside the write lock), resumably; a delete is invisible to another process's search at once."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from assistant.services.access import LOCAL_ADMIN
from assistant.settings import PROJECT_ROOT
from conftest import make_container
from ingest.loaders import SourceDocument

KB = "store"


def law(doc_id: str, n: int, word: str = "数据") -> SourceDocument:
    text = "\n".join(f"第{i + 1}条 示范市{word}局应当按照第{i + 1}项规定做好第{i + 1}类公共{word}的归集和开放。"
                     for i in range(n))
    return SourceDocument(doc_id, f"示范市{word}条例{doc_id}", f"{doc_id}.txt", text)


def consistent(c, kb: str = KB) -> dict:
    check = c.knowledge_bases.check(kb, principal=LOCAL_ADMIN)
    assert check["consistent"], check
    assert c.store.vectors.ids(kb) == set(c.store.catalog.chunk_ids(kb))
    return check


def test_searchable_by_keywords_at_once_vectors_behind(tmp_path):
    c = make_container(tmp_path / "data", GOV_ASSISTANT_INGEST__WRITE_BATCH="4")
    kbs = c.knowledge_bases
    report = kbs.ingest_documents(KB, [law("a", 10)], principal=LOCAL_ADMIN, wait=False)
    (res,) = report.results
    assert res.status == "added" and res.pending_vectors == res.chunks and report.vectors is None
    assert report.to_dict()["vectors"] is None
    hits = c.search.search("第7类公共数据", [KB], mode="bm25", principal=LOCAL_ADMIN).hits
    assert hits and hits[0].doc_id == "a"
    assert c.search.search("第7类公共数据", [KB], mode="dense", principal=LOCAL_ADMIN).hits == []
    result = c.search.search("第7类公共数据", [KB], principal=LOCAL_ADMIN)
    assert result.hits and result.vector_share == 0.0
    info = kbs.info(KB, principal=LOCAL_ADMIN)
    assert info["pending_vectors"] == res.chunks and info["vector_share"] == 0.0 and info["vectors"] == 0
    check = kbs.check(KB, principal=LOCAL_ADMIN)
    assert check["consistent"] and check["documents_pending_vectors"] == ["a"] and check["pending_vectors"] == res.chunks

    seen = []
    vectors = kbs.fill_vectors(KB, lambda phase, done, total, detail="": seen.append((phase, done, total)),
                               principal=LOCAL_ADMIN)
    assert vectors.written == res.chunks and vectors.pending == 0 and vectors.skipped == 0
    assert seen[-1] == ("vectors", res.chunks, res.chunks) and all(p == "vectors" for p, _, _ in seen)
    dense = c.search.search("第7类公共数据", [KB], mode="dense", principal=LOCAL_ADMIN)
    assert dense.hits and dense.vector_share == 1.0
    assert kbs.info(KB, principal=LOCAL_ADMIN)["pending_vectors"] == 0
    consistent(c)


def test_the_write_lock_is_free_while_a_large_document_is_embedded(tmp_path):
    """Embedding runs outside the write lock: another process could write the knowledge base meanwhile."""
    c = make_container(tmp_path / "data", GOV_ASSISTANT_INGEST__WRITE_BATCH="5")
    inner, free = c.embeddings.embed_documents, []

    def probe(texts):
        with open(tmp_path / "data" / "locks" / f"{KB}.lock", "a") as f:
            try:          # a new open file description: conflicts with this process's own flock too
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                free.append(True)
                fcntl.flock(f, fcntl.LOCK_UN)
            except BlockingIOError:
                free.append(False)
        return inner(texts)

    c.pipeline.embeddings.embed_documents = probe
    report = c.knowledge_bases.ingest_documents(KB, [law("big", 30)], principal=LOCAL_ADMIN)
    assert report.ok and report.vectors.written == report.chunks and len(free) >= 6 and all(free)
    consistent(c)


def test_a_worker_that_fails_midway_is_resumed_by_a_new_store(tmp_path):
    data = tmp_path / "data"
    c = make_container(data, GOV_ASSISTANT_INGEST__WRITE_BATCH="4")
    inner, calls = c.embeddings.embed_documents, []

    def flaky(texts):
        calls.append(len(texts))
        if len(calls) == 3:
            raise RuntimeError("simulated crash in the embedder")
        return inner(texts)

    c.pipeline.embeddings.embed_documents = flaky
    report = c.knowledge_bases.ingest_documents(KB, [law("a", 9), law("b", 6, "交通")], principal=LOCAL_ADMIN)
    assert report.ok and [r.status for r in report.results] == ["added", "added"]
    assert "simulated crash" in report.vectors.error and report.vectors.pending == report.chunks - 8
    # the text stage stands: both searchable by keywords
    assert c.search.search("公共交通", [KB], mode="bm25", principal=LOCAL_ADMIN).hits[0].doc_id == "b"

    fresh = make_container(data, GOV_ASSISTANT_INGEST__WRITE_BATCH="4")      # a restarted process
    done = fresh.knowledge_bases.fill_vectors(KB, principal=LOCAL_ADMIN)
    assert done.written == report.chunks - 8 and done.pending == 0
    consistent(fresh)
    assert fresh.search.search("公共交通", [KB], mode="dense", principal=LOCAL_ADMIN).hits[0].doc_id == "b"


def test_vectors_of_chunks_replaced_or_deleted_while_embedding_are_not_written(tmp_path):
    c = make_container(tmp_path / "data", GOV_ASSISTANT_INGEST__WRITE_BATCH="50")
    kbs = c.knowledge_bases
    assert kbs.ingest_documents(KB, [law("a", 5), law("b", 5, "交通")], principal=LOCAL_ADMIN, wait=False).ok
    before = len(c.store.catalog.chunk_ids(KB))
    inner = c.embeddings.embed_documents

    def meanwhile(texts):       # another writer replaces a and deletes b while the worker embeds them
        if not meanwhile.done:
            meanwhile.done = True
            assert kbs.ingest_documents(KB, [law("a", 3, "环境")], principal=LOCAL_ADMIN, wait=False).ok
            kbs.delete_document(KB, "b", principal=LOCAL_ADMIN)
        return inner(texts)
    meanwhile.done = False

    c.pipeline.embeddings.embed_documents = meanwhile
    vectors = kbs.fill_vectors(KB, principal=LOCAL_ADMIN)
    new_a = len(c.store.catalog.document_chunk_ids(KB, "a"))
    assert vectors.skipped == before and vectors.written == new_a and vectors.pending == 0
    consistent(c)


def test_a_delete_is_invisible_to_another_process_at_once(tmp_path):
    data = tmp_path / "data"
    c = make_container(data)
    assert c.knowledge_bases.ingest_documents(KB, [law("a", 3), law("b", 3, "交通")], principal=LOCAL_ADMIN).ok
    assert c.search.search("公共交通", [KB], mode="bm25", principal=LOCAL_ADMIN).hits[0].doc_id == "b"
    env = {**os.environ, "GOV_ASSISTANT_DATA_DIR": str(data), "GOV_ASSISTANT_PROFILE": "unit"}
    proc = subprocess.run([sys.executable, "-m", "assistant.cli", "doc", "delete", "b", "--kb", KB], env=env,
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for mode in ("bm25", "dense", "hybrid"):      # this process's next query, nothing reloaded
        hits = c.search.search("公共交通", [KB], mode=mode, top_k=20, principal=LOCAL_ADMIN).hits
        assert "b" not in {h.doc_id for h in hits}, mode
    assert c.store.bm25.doc_index(KB).search(["交通"], 10) == []
    consistent(c)


def test_cli_no_wait_then_kb_embed(tmp_path, monkeypatch):
    from assistant.cli import context
    from assistant.cli.main import app

    c = make_container(tmp_path / "data")
    monkeypatch.setattr(context, "container", lambda: c)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("示范市数据条例\n第一条 公共数据应当开放。\n第二条 数据局负责归集。", encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", str(docs), "--kb", KB, "--no-wait"])
    assert res.exit_code == 0 and "searchable by keywords" in res.output and "kb embed store" in res.output
    info = json.loads(runner.invoke(app, ["kb", "info", KB]).output)
    assert info["pending_vectors"] > 0 and info["vector_share"] == 0.0
    res = runner.invoke(app, ["kb", "embed", KB, "--json"])
    assert res.exit_code == 0 and last_json(res.output)["written"] == info["pending_vectors"]
    assert json.loads(runner.invoke(app, ["kb", "info", KB]).output)["pending_vectors"] == 0
    res = runner.invoke(app, ["ingest", str(docs), "--kb", KB, "--json"])
    assert res.exit_code == 0 and last_json(res.output)["vectors"]["written"] == 0
    res = runner.invoke(app, ["kb", "embed", "nope"])
    assert res.exit_code == 2 and "nope" in res.output


def last_json(output: str) -> dict:
    """The JSON document a command printed after its progress bars (stderr is mixed in)."""
    return json.loads(output[output.index("\n{") + 1:] if not output.startswith("{") else output)


@pytest.mark.parametrize("setting", ["1", "1000"])
def test_batch_size_does_not_change_what_is_stored(tmp_path, setting):
    c = make_container(tmp_path / "data", GOV_ASSISTANT_INGEST__WRITE_BATCH=setting)
    assert c.knowledge_bases.ingest_documents(KB, [law("a", 7)], principal=LOCAL_ADMIN).ok
    assert consistent(c)["vectors"] == len(c.store.catalog.document_chunk_ids(KB, "a"))
