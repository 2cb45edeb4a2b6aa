"""Catalog.lexical_search ranks in FTS5 first and filters its best rows: the results must be those of ranking every
matching row, for broad filters, narrow ones (the fallback) and none."""
from __future__ import annotations

import pytest

from assistant.components.store import catalog as catalog_module
from assistant.components.store.catalog import Catalog, ChunkRecord
from assistant.filters import Filters

N_DOCS = 300


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    cat = Catalog(tmp_path_factory.mktemp("lex") / "catalog.sqlite3")
    cat.create_kb("kb", "hash")
    for i in range(N_DOCS):
        doc_id = f"d{i}"
        # lengths and term counts vary, so bm25 orders the rows; every row matches 通知
        words = ["通知"] * (1 + i % 3) + ["填充"] * (i % 11) + (["公开"] if i % 5 == 0 else [])
        meta = {"sensitivity": "内部", "date_int": 20200101 + 100 * (i // 30), "status": "现行有效" if i % 4 else "已废止"}
        cat.mark_pending("kb", doc_id, f"h{i}", doc_id, doc_id, {"sensitivity": "内部"})
        cat.stage_chunks("kb", doc_id, [ChunkRecord(f"{doc_id}-0", doc_id, 0, " ".join(words), words, meta)])
        cat.commit_document("kb", doc_id, f"h{i}", doc_id, doc_id, {"sensitivity": "内部"})
    return cat


def every_row_ranked(cat, monkeypatch, *args, **kwargs):
    with monkeypatch.context() as m:
        m.setattr(catalog_module, "LEXICAL_DEPTH", 10 ** 9)
        return cat.lexical_search(*args, **kwargs)


@pytest.mark.parametrize("flt", [None, Filters(status=["现行有效"]), Filters(date_from="2020-06-01"),
                                 # 7 rows pass: fewer than asked, so the fallback ranks every row
                                 Filters(date_from="2020-10-01", status=["已废止"])], ids=["none", "broad", "half", "narrow"])
@pytest.mark.parametrize("tokens", [["通知"], ["通知", "公开"]])
@pytest.mark.parametrize("rank_first", [True, False])
def test_ranking_first_gives_what_ranking_every_row_gives(cat, monkeypatch, flt, tokens, rank_first):
    where = flt.to_sql("c.metadata") if flt else None
    got = cat.lexical_search("kb", tokens, 10, where=where, rank_first=rank_first)
    assert got == every_row_ranked(cat, monkeypatch, "kb", tokens, 10, where=where)
    assert len(got) == (7 if flt and flt.date_from == "2020-10-01" else 10)
    assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)


def test_document_level_ranks_the_same_way(cat, monkeypatch):
    got = cat.lexical_search("kb", ["通知", "公开"], 20, level="document")
    assert len(got) == 20 and got == every_row_ranked(cat, monkeypatch, "kb", ["通知", "公开"], 20, level="document")
    with pytest.raises(ValueError, match="lexical level"):
        cat.lexical_search("kb", ["通知"], 5, level="page")


def test_only_a_filter_the_caller_chose_narrows():
    # validity and clearance ride on every search and pass most chunks: FTS5 ranks first under them
    assert not Filters().with_default_status(["现行有效"]).visible_to(("公开", "内部")).narrows()
    assert not Filters(status=["已废止"]).narrows()
    for narrow in (Filters(agency="示范市数据局"), Filters(date_from="2024-01-01"), Filters(doc_ids=["d1"]),
                   Filters(doc_type="通知"), Filters(extra={"law": "数据安全法"})):
        assert narrow.narrows()
