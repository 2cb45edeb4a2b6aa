"""A law the knowledge base holds only as 已被修改 (laws.db's 中华人民共和国刑法) is retrieved by default, its newest
text, with 此文本此后已被修改，请以最新修正文本为准 on the citation, in the answer (once) and its status in the
prompt; a 现行有效 version of the same law hides it again (and deleting that version shows it again), repealed and
historical texts never count as current, and a status the caller names keeps its exact meaning. Unit profile:
scripted LLM, hashing embedder; every retrieval mode, and the vector store's copy of the flag."""
from __future__ import annotations

from functools import partial

import pytest

from assistant.filters import Filters, newest_amended
from assistant.services.access import LOCAL_ADMIN
from conftest import make_container
from ingest.loaders import SourceDocument

KB = "law"
LAW = "中华人民共和国刑法"
NOTICE = "此文本此后已被修改，请以最新修正文本为准"
MODES = ("bm25", "dense", "hybrid")
QUESTION = "盗窃公私财物数额较大的如何处罚？"


def text_of(doc_id: str, status: str, version_date: str, body: str, law: str = LAW) -> SourceDocument:
    meta = {"law": law, "status": status, "version_date": version_date, "doc_type": "法律", "agency": "全国人民代表大会"}
    return SourceDocument(doc_id, law, f"{doc_id}.txt", body, extract_metadata=False, metadata=meta)


AMENDED = text_of("xf-2020", "已被修改", "2020-12-26",
                  "第二百六十四条 盗窃公私财物，数额较大的，处三年以下有期徒刑、拘役或者管制，并处或者单处罚金。\n"
                  "第二百六十六条 诈骗公私财物，数额较大的，处三年以下有期徒刑、拘役或者管制，并处或者单处罚金。")
OLDER = text_of("xf-2017", "已被修改", "2017-11-04",
                "第二百六十四条 盗窃公私财物，数额较大的，处三年以下有期徒刑、拘役或者管制，并处罚金。")
CURRENT = text_of("xf-2023", "现行有效", "2023-12-29",
                  "第二百六十四条 盗窃公私财物，数额较大的，处三年以下有期徒刑、拘役或者管制，并处或者单处罚金；"
                  "数额巨大的，处三年以上十年以下有期徒刑。")
FILLERS = [SourceDocument(f"f{i}", title, f"f{i}.txt", body) for i, (title, body) in enumerate([
    ("婚姻登记须知", "结婚登记需要双方当事人共同到婚姻登记机关办理。"),
    ("护照办理指南", "申请普通护照应当提交近期免冠照片和居民身份证。"),
    ("垃圾分类通知", "居民应当将厨余垃圾投放到绿色垃圾桶。"),
    ("社保卡补办", "社会保障卡遗失的，持本人身份证到服务网点补办。"),
])]


@pytest.fixture
def kb(container):
    assert container.knowledge_bases.ingest_documents(KB, [AMENDED, *FILLERS], principal=LOCAL_ADMIN).ok
    return container


def ingest(c, *docs, wait: bool = True):
    report = c.knowledge_bases.ingest_documents(KB, list(docs), principal=LOCAL_ADMIN, wait=wait)
    assert report.ok, report.to_dict()


def law_docs(c, filters: Filters | None = None, mode: str = "hybrid") -> set[str]:
    hits = c.search.search(QUESTION, [KB], filters, top_k=10, mode=mode, principal=LOCAL_ADMIN).hits
    return {h.doc_id for h in hits if h.metadata.get("law")}


def flags(c, doc_id: str) -> tuple[set, set]:
    """The latest_text flags of a document's chunks: in the catalog and in the vector store's copy."""
    catalog = {ch["metadata"].get("latest_text") for ch in c.store.catalog.document_chunks(KB, doc_id)}
    vectors = {m.get("latest_text") for m in c.store.vectors.collection(KB).get(
        where={"doc_id": doc_id}, include=["metadatas"])["metadatas"]}
    return catalog, vectors


def test_the_newest_text_is_retrieved_by_default_when_it_is_amended(kb):
    for mode in MODES:
        assert law_docs(kb, mode=mode) == {"xf-2020"}, mode
    assert flags(kb, "xf-2020") == ({True}, {True})


def test_its_citation_answer_and_prompt_carry_the_warning(kb):
    events = list(kb.qa.stream(QUESTION, [KB], principal=LOCAL_ADMIN))
    answer = events[-1]["answer"]
    assert not answer.refused
    first = answer.citations[0]
    assert first.doc_id == "xf-2020" and first.cited and first.notice == NOTICE
    assert first.label == f"《{LAW}》第二百六十四条" and first.noted_label == f"《{LAW}》第二百六十四条（{NOTICE}）"
    # said once, at the end of the answer, and streamed last
    assert answer.answer.count(NOTICE) == 1
    assert answer.answer.endswith(f"注意：所引《{LAW}》：{NOTICE}。")
    assert events[-2] == {"type": "token", "text": f"\n\n注意：所引《{LAW}》：{NOTICE}。"}
    assert f"[1] 《{LAW}》第二百六十四条（{NOTICE}）" in answer.export_text()
    assert answer.to_dict()["citations"][0]["notice"] == NOTICE
    # the model sees the status in the document's header
    assert f"《{LAW}》（全国人民代表大会，已被修改）" in kb.llm.calls[-1][-1]["content"]


def test_an_answer_from_current_texts_has_no_warning(kb):
    answer = kb.qa.ask("结婚登记需要到哪里办理？", [KB], principal=LOCAL_ADMIN)
    assert not answer.refused and NOTICE not in answer.answer
    assert all(c.notice is None for c in answer.citations)


def test_a_current_version_hides_the_amended_one_and_deleting_it_shows_it_again(kb):
    ingest(kb, CURRENT)
    for mode in MODES:
        assert law_docs(kb, mode=mode) == {"xf-2023"}, mode
    assert flags(kb, "xf-2020") == ({None}, {None})
    answer = kb.qa.ask(QUESTION, [KB], principal=LOCAL_ADMIN)
    assert answer.citations[0].doc_id == "xf-2023" and NOTICE not in answer.answer
    kb.knowledge_bases.delete_document(KB, "xf-2023", principal=LOCAL_ADMIN)
    for mode in MODES:
        assert law_docs(kb, mode=mode) == {"xf-2020"}, mode
    assert flags(kb, "xf-2020") == ({True}, {True})


def test_a_current_version_ingested_first_keeps_a_later_amended_one_hidden(container):
    ingest(container, CURRENT, *FILLERS)
    ingest(container, AMENDED)
    for mode in MODES:
        assert law_docs(container, mode=mode) == {"xf-2023"}, mode
    assert flags(container, "xf-2020") == ({None}, {None})


def test_only_the_newest_of_several_amended_texts_and_the_next_when_it_goes(kb):
    ingest(kb, OLDER)
    assert law_docs(kb) == {"xf-2020"} and flags(kb, "xf-2017") == ({None}, {None})
    kb.knowledge_bases.delete_document(KB, "xf-2020", principal=LOCAL_ADMIN)
    for mode in MODES:
        assert law_docs(kb, mode=mode) == {"xf-2017"}, mode


def test_a_replaced_text_is_decided_again(kb):
    """Re-ingesting the document under another status: the new version's chunks are decided, not copied."""
    ingest(kb, text_of("xf-2020", "已废止", "2020-12-26", AMENDED.text))
    assert law_docs(kb) == set() and flags(kb, "xf-2020") == ({None}, {None})
    ingest(kb, AMENDED)
    assert law_docs(kb) == {"xf-2020"} and flags(kb, "xf-2020") == ({True}, {True})


@pytest.mark.parametrize("others", [
    [text_of("xf-2024", "已废止", "2024-03-01", "第二百六十四条 盗窃公私财物，数额较大的，处罚金。")],
    [text_of("xf-2024", "历史版本", "2024-03-01", "第二百六十四条 盗窃公私财物，数额较大的，处拘役。")],
], ids=["repealed-later", "historical-later"])
def test_a_newer_repealed_or_historical_text_means_the_amended_one_is_not_current(kb, others):
    ingest(kb, *others)
    for mode in MODES:
        assert law_docs(kb, mode=mode) == set(), mode
    assert flags(kb, "xf-2020") == ({None}, {None})


def test_repealed_and_historical_texts_alone_are_never_retrieved_by_default(container):
    ingest(container, *FILLERS,
           text_of("zc", "已废止", "2018-01-01", "第一条 盗窃公私财物数额较大的，依照本条例处罚。", law="示范治安条例"),
           text_of("ls", "历史版本", "2019-01-01", "第一条 盗窃公私财物数额较大的，处行政拘留。", law="示范处罚办法"))
    for mode in MODES:
        assert law_docs(container, mode=mode) == set(), mode
    assert law_docs(container, Filters.parse(["status=已废止,历史版本"])) == {"zc", "ls"}


def test_a_status_the_caller_names_keeps_its_exact_meaning(kb):
    search = partial(law_docs, kb)
    ingest(kb, OLDER)
    for mode in MODES:
        assert search(Filters.parse(["status=现行有效"]), mode) == set(), mode      # the amended law is not 现行有效
        assert search(Filters.parse(["status=已被修改"]), mode) == {"xf-2020", "xf-2017"}, mode
        assert search(Filters.parse(["status=*"]), mode) == {"xf-2020", "xf-2017"}, mode
    ingest(kb, CURRENT)
    assert search(Filters.parse(["status=已被修改"])) == {"xf-2020", "xf-2017"}
    # asked for, an amended text is cited with its warning too
    answer = kb.qa.ask(QUESTION, [KB], Filters.parse(["status=已被修改"]), principal=LOCAL_ADMIN)
    assert answer.citations[0].notice == NOTICE and answer.answer.count(NOTICE) == 1


def test_vectors_written_while_a_flag_changes_get_the_flag_as_committed(container, monkeypatch):
    """The embedding worker embeds outside the write lock: a commit meanwhile may unflag what it embeds."""
    if container.store.catalog.postgres:
        pytest.skip("the PostgreSQL worker locks the rows it embeds: a commit waits for their vectors")
    ingest(container, AMENDED, *FILLERS, wait=False)
    embeddings = container.pipeline.embeddings
    embed = embeddings.embed_documents
    raced: list[bool] = []

    def racing(texts):
        if not raced:
            raced.append(True)
            ingest(container, CURRENT, wait=False)      # unflags xf-2020 while its batch is embedded
        return embed(texts)

    monkeypatch.setattr(embeddings, "embed_documents", racing)
    container.knowledge_bases.fill_vectors(KB, principal=LOCAL_ADMIN)
    assert raced and flags(container, "xf-2020") == ({None}, {None})
    assert law_docs(container, mode="dense") == {"xf-2023"}


def test_a_stale_flag_in_the_vector_store_never_leaks(kb):
    """Dense retrieval filters on the vectors' copy of the metadata; the catalog's record decides."""
    ingest(kb, CURRENT)
    ids = sorted(kb.store.catalog.document_chunk_ids(KB, "xf-2020"))
    kb.store.vectors.set_flags(KB, "latest_text", dict.fromkeys(ids, True))     # as if a sync were lost
    assert flags(kb, "xf-2020") == ({None}, {True})
    for mode in ("dense", "hybrid"):
        assert law_docs(kb, mode=mode) == {"xf-2023"}, mode


def test_a_catalog_from_before_the_flag_is_decided_when_opened(tmp_path):
    data = tmp_path / "data"
    c = make_container(data)
    ingest(c, AMENDED, *FILLERS)
    with c.store.catalog.transaction() as db:       # as written before latest_text existed
        db.execute(f"UPDATE chunks SET metadata={c.store.catalog._flag_sql(False)}")
    ids = sorted(c.store.catalog.document_chunk_ids(KB, "xf-2020"))
    c.store.vectors.set_flags(KB, "latest_text", dict.fromkeys(ids, False))
    assert law_docs(c) == set()
    reopened = make_container(data)
    assert flags(reopened, "xf-2020") == ({True}, {True})
    for mode in MODES:
        assert law_docs(reopened, mode=mode) == {"xf-2020"}, mode


@pytest.mark.parametrize("texts, newest", [
    ({"a": {"status": "已被修改", "version_date": "2020-12-26"}}, {"a"}),
    ({"a": {"status": "已被修改", "version_date": "2020-12-26"}, "b": {"status": "现行有效"}}, set()),
    ({"a": {"status": "已被修改", "version_date": "2020"}, "b": {"status": "已被修改", "date": "2017-11-04"}}, {"a"}),
    ({"a": {"status": "已被修改"}, "b": {"status": "已被修改"}}, {"a", "b"}),        # undated: both, both warned
    ({"a": {"status": "已被修改", "version_date": "2020"}, "b": {"status": "已废止", "version_date": "2021"}}, set()),
    ({"a": {"status": "已被修改", "version_date": "2020"}, "b": {"status": "历史版本", "version_date": "2020"}}, set()),
    # a text not yet in force supersedes nothing: the amended one is what is in force
    ({"a": {"status": "已被修改", "version_date": "2020"}, "b": {"status": "尚未生效", "version_date": "2027"}}, {"a"}),
    ({"a": {"status": "已废止", "version_date": "2020"}}, set()),
    ({}, set()),
])
def test_newest_amended_rule(texts, newest):
    assert newest_amended(texts) == newest
