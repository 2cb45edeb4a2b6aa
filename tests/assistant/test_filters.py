"""Metadata filters: parsing errors name the field; the Chroma `where`, the SQL condition (lexical search) and the
Python predicate agree (the default validity too: 现行有效, or 已被修改 flagged latest_text);
a filter that matches nothing returns nothing from either retriever (never fails open)."""
from __future__ import annotations

from functools import partial

import pytest

from assistant.filters import Filters, FilterError, date_to_int
from assistant.services.access import LOCAL_ADMIN
from conftest import make_container
from ingest.loaders import SourceDocument

DEFAULT = ["现行有效"]

# doc_id -> chunk metadata as the pipeline stores it (date_int derived from date)
TABLE = {
    "a": {"doc_id": "a", "status": "现行有效", "agency": "示范市公安局", "doc_type": "办事指南", "date_int": 20250210},
    "b": {"doc_id": "b", "status": "已废止", "agency": "示范市人民政府", "doc_type": "规范性文件", "date_int": 20180601},
    "c": {"doc_id": "c", "status": "现行有效", "agency": "示范市人民政府办公厅", "doc_type": "通知", "date_int": 20250318},
    "d": {"doc_id": "d", "status": "历史版本", "doc_type": "法律", "date_int": 20170901, "law": "中华人民共和国仲裁法"},
    "e": {"doc_id": "e", "status": "现行有效", "doc_type": "法律", "law": "中华人民共和国仲裁法"},  # no date
    "f": {"doc_id": "f", "status": "现行有效", "agency": "示范市人民政府", "doc_type": "通知", "date_int": 20181231},
    # 已被修改: the newest text of its law in the KB (the catalog flags it), and an older one (not flagged)
    "g": {"doc_id": "g", "status": "已被修改", "doc_type": "法律", "law": "中华人民共和国刑法", "date_int": 20201226,
          "latest_text": True},
    "h": {"doc_id": "h", "status": "已被修改", "doc_type": "法律", "law": "中华人民共和国刑法", "date_int": 20190101},
}

CASES = [
    ([], {"a", "c", "e", "f", "g"}),                                     # default validity: + the newest amended
    (["status=现行有效"], {"a", "c", "e", "f"}),                          # a stated status means just that
    (["status=已被修改"], {"g", "h"}),
    (["law=中华人民共和国刑法"], {"g"}),
    (["date_from=2020"], {"a", "c", "g"}),
    (["status=*"], set(TABLE)),
    (["status=已废止,历史版本"], {"b", "d"}),
    (["status=已废止"], {"b"}),
    (["agency=示范市人民政府"], {"f"}),                                  # exact: not 办公厅, not the repealed one
    (["agency=示范市人民政府", "status=*"], {"b", "f"}),
    (["doc_type=法律", "status=*"], {"d", "e", "g", "h"}),
    (["date_from=2025"], {"a", "c"}),                                    # no date: excluded by a date bound
    (["date_from=2025-03-18"], {"c"}),                                   # bounds are inclusive
    (["date_to=2018", "status=*"], {"b", "d", "f"}),                     # a year bound rounds up to 12-31
    (["date_to=2018-06", "status=*"], {"b", "d"}),                       # a month bound rounds up to its end
    (["date_to=2018-05", "status=*"], {"d"}),
    (["date_from=2018-06-01", "date_to=2018-06-01", "status=*"], {"b"}),
    (["date_from=2018年6月", "date_to=2018年12月31日", "status=*"], {"b", "f"}),
    (["doc_ids=a,b"], {"a"}),                                            # doc_ids and validity both apply
    (["doc_ids=a,b", "status=*"], {"a", "b"}),
    (["law=中华人民共和国仲裁法"], {"e"}),                                # any other exact field
    (["law=中华人民共和国仲裁法", "status=*"], {"d", "e"}),
    (["agency=不存在的机关"], set()),
    (["status=尚未生效"], set()),
]


@pytest.mark.parametrize("items, expected", CASES, ids=[" ".join(c[0]) or "default" for c in CASES])
def test_predicate_matches_expected_table(items, expected):
    flt = Filters.parse(items).with_default_status(DEFAULT)
    assert {doc_id for doc_id, meta in TABLE.items() if flt.matches(meta)} == expected


def test_chroma_where_agrees_with_predicate(container):
    """Every case rendered as a Chroma `where` selects exactly what the Python predicate (BM25 side) keeps."""
    vectors = container.store.vectors
    ids = list(TABLE)
    vectors.upsert("flt", ids, [[1.0, float(i)] for i in range(len(ids))], [TABLE[i] for i in ids], ids)
    col = vectors.collection("flt")
    for items, expected in CASES:
        flt = Filters.parse(items).with_default_status(DEFAULT)
        where = flt.to_where()
        chroma = set(col.get(where=where, include=[])["ids"]) if where else set(ids)
        assert chroma == expected, (items, where)


def test_sql_condition_agrees_with_predicate():
    """The lexical side filters in SQL over the catalog's JSON metadata: same rows as the predicate."""
    import json
    import sqlite3
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE chunks (id TEXT, metadata TEXT)")
    db.executemany("INSERT INTO chunks VALUES (?,?)", [(k, json.dumps(v, ensure_ascii=False)) for k, v in TABLE.items()])
    for items, expected in CASES:
        cond, args = Filters.parse(items).with_default_status(DEFAULT).to_sql("c.metadata")
        got = {r[0] for r in db.execute(f"SELECT id FROM chunks c WHERE {cond}", args)}
        assert got == expected, (items, cond)
    # a value never enters the SQL text
    cond, args = Filters.parse(["agency=x') OR 1=1 --"]).to_sql()
    assert "OR 1=1" not in cond and not {r[0] for r in db.execute(f"SELECT id FROM chunks c WHERE {cond}", args)}


@pytest.mark.parametrize("items, field", [
    (["status=有效"], "status"),
    (["status=,"], "status"),
    (["doc_ids= , "], "doc_ids"),
    (["date_from=yesterday"], "date_from"),
    (["date_to=2024-13-01"], "date_to"),
    (["Agency=示范市公安局"], "Agency"),
    (["agency"], "agency"),
    (["agency="], "agency"),
])
def test_parse_errors_name_the_field(items, field):
    with pytest.raises(FilterError) as exc:
        Filters.parse(items)
    assert field in str(exc.value)


def test_empty_status_never_means_any_validity():
    # a status list that is empty (built by code rather than parsed) falls back to the default, not to "any"
    assert Filters(status=[]).with_default_status(DEFAULT).status == DEFAULT
    assert Filters(status=["*"]).with_default_status(DEFAULT).to_where() is None
    assert Filters().with_default_status(DEFAULT).to_where() == {"$or": [
        {"status": {"$in": DEFAULT}}, {"$and": [{"status": {"$eq": "已被修改"}}, {"latest_text": {"$eq": True}}]}]}
    assert Filters(status=DEFAULT).with_default_status(DEFAULT).to_where() == {"status": {"$in": DEFAULT}}
    # a default that names 已被修改 itself, or not 现行有效, needs no newest-amended branch
    assert Filters().with_default_status(["现行有效", "已被修改"]).to_where() == {
        "status": {"$in": ["现行有效", "已被修改"]}}
    assert not Filters().with_default_status(["已废止"]).latest_amended
    # never from a request
    assert not Filters.from_dict({"latest_amended": True}).latest_amended


def test_from_dict_accepts_lists_and_skips_empty_values():
    flt = Filters.from_dict({"status": ["现行有效", "已废止"], "doc_ids": ["x"], "agency": "", "law": None,
                             "level": "法律"})
    assert flt.status == ["现行有效", "已废止"] and flt.doc_ids == ["x"] and flt.agency is None
    assert flt.extra == {"level": "法律"}
    assert flt.as_dict() == {"status": ["现行有效", "已废止"], "doc_ids": ["x"], "level": "法律"}


def test_date_bounds():
    assert date_to_int("2020") == 20200101
    assert date_to_int("2020", end=True) == 20201231
    assert date_to_int("2020-03") == 20200301
    assert date_to_int("2020-03", end=True) == 20200331
    assert date_to_int("2020-03-05", end=True) == 20200305
    assert date_to_int("2020年3月5日") == 20200305
    assert date_to_int("2020.3.5") == 20200305
    for bad in ("20-03-05", "2020-00-01", "2020-01-32", "March 2020"):
        with pytest.raises(FilterError):
            date_to_int(bad)


def _docs():
    return [
        SourceDocument("guide", "停车收费指南", "guide.txt", "第一条 路内停车每小时收费五元。\n第二条 夜间停车免费。",
                       metadata={"status": "现行有效", "agency": "示范市交通局", "date": "2025-01-02"}),
        SourceDocument("old", "停车收费旧办法", "old.txt", "第一条 路内停车每小时收费八元。",
                       metadata={"status": "已废止", "agency": "示范市交通局", "date": "2015-01-02"}),
        SourceDocument("other", "养老补贴办法", "other.txt", "第一条 年满八十周岁的老年人可以申请高龄津贴。",
                       metadata={"status": "现行有效", "agency": "示范市民政局", "date": "2024-06-01"}),
        SourceDocument("third", "公积金提取指南", "third.txt", "职工购房可以提取住房公积金。",
                       metadata={"status": "现行有效", "agency": "示范市公积金中心", "date": "2023-03-01"}),
    ] + [SourceDocument(f"filler{i}", title, f"filler{i}.txt", text) for i, (title, text) in enumerate([
        ("婚姻登记须知", "结婚登记需要双方当事人共同到婚姻登记机关办理。"),
        ("护照办理指南", "申请普通护照应当提交近期免冠照片和居民身份证。"),
        ("垃圾分类通知", "居民应当将厨余垃圾投放到绿色垃圾桶。"),
        ("电动自行车登记", "电动自行车应当在购买之日起三十日内办理登记。"),
        ("社保卡补办", "社会保障卡遗失的，持本人身份证到服务网点补办。"),
    ])]


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    c = make_container(tmp_path_factory.mktemp("filters") / "data")
    assert c.knowledge_bases.ingest_documents("kb", _docs(), principal=LOCAL_ADMIN).ok
    return c


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_filter_matching_nothing_returns_nothing(kb, mode):
    search = partial(kb.search.search, principal=LOCAL_ADMIN)
    assert search("停车收费", ["kb"], mode=mode).hits, "the unfiltered query must find something"
    for items in (["agency=不存在的机关"], ["doc_ids=nope"], ["date_from=2030"], ["law=中华人民共和国仲裁法"],
                  ["status=尚未生效"], ["doc_type=不存在"]):
        assert search("停车收费", ["kb"], Filters.parse(items), mode=mode).hits == [], items


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_filters_apply_inside_each_retriever(kb, mode):
    search = partial(kb.search.search, principal=LOCAL_ADMIN)
    default = search("路内停车每小时收费", ["kb"], mode=mode).hits
    assert default and {h.metadata["status"] for h in default} == {"现行有效"}
    assert "old" not in {h.doc_id for h in default}
    repealed = search("路内停车每小时收费", ["kb"], Filters.parse(["status=已废止"]), mode=mode).hits
    assert {h.doc_id for h in repealed} == {"old"}
    anyv = search("路内停车每小时收费", ["kb"], Filters.parse(["status=*"]), top_k=10, mode=mode).hits
    assert {"guide", "old"} <= {h.doc_id for h in anyv}
    dated = search("停车", ["kb"], Filters.parse(["date_from=2024-06-01", "date_to=2025"]), top_k=10, mode=mode).hits
    assert dated and {h.doc_id for h in dated} <= {"guide", "other"}
    assert all(20240601 <= h.metadata["date_int"] <= 20251231 for h in dated)
    only = search("停车", ["kb"], Filters.parse(["doc_ids=other"]), top_k=10, mode=mode).hits
    assert {h.doc_id for h in only} <= {"other"}
    agency = search("停车收费", ["kb"], Filters.parse(["agency=示范市交通局", "status=*"]), top_k=10, mode=mode).hits
    assert agency and {h.metadata["agency"] for h in agency} == {"示范市交通局"}
