"""The scale-out profile's PostgreSQL backend (issue #18) on a real server: the catalog's BM25 ranks as FTS5 does,
its lexical totals stay exact under concurrent writers and deletes, the audit log is append-only for the app
role and the owner, the schema is Alembic's, rate limits are shared by replicas, errors name the server without
its password."""
from __future__ import annotations

import threading

import pytest

from conftest import make_container
from assistant.components.store.catalog import Catalog, ChunkRecord
from assistant.components.store.tokens import tokenize
from assistant.db import Database, DatabaseError
from assistant.demo import sample_documents
from assistant.services.access import LOCAL_ADMIN
from assistant.services.rate_limit import RateLimited, RateLimiter

QUERIES = ["新生儿落户需要什么材料", "数据出境负面清单", "行政处罚的种类有哪些", "办理时限是多久",
           "个人信息保护", "公共数据开放", "疫情防控期间的补贴", "营业执照 变更 登记"]


@pytest.fixture(scope="module")
def pg():
    import pg_fixtures
    return pg_fixtures.session_server()


def _ingest_samples(tmp, **env):
    c = make_container(tmp, **env)
    report = c.knowledge_bases.ingest_documents("samples", sample_documents(), principal=LOCAL_ADMIN)
    assert report.ok, report.to_dict()
    return c


def test_postgres_bm25_ranks_as_fts5_on_the_same_documents(tmp_path, pg):
    lite = _ingest_samples(tmp_path / "lite", GOV_ASSISTANT_DATABASE__URL="")
    post = _ingest_samples(tmp_path / "pg", GOV_ASSISTANT_DATABASE__URL=pg.new_database())
    assert not lite.store.catalog.postgres and post.store.catalog.postgres
    compared = 0
    for q in QUERIES:
        tokens = tokenize(q)
        for level in ("chunk", "document"):
            a = lite.store.catalog.lexical_search("samples", tokens, 10, level)
            b = post.store.catalog.lexical_search("samples", tokens, 10, level)
            assert a, (q, level)
            # chunk ids are content-derived, so both stores name the same chunks alike
            assert [i for i, _ in a] == [i for i, _ in b], (q, level)
            for (_, sa), (_, sb) in zip(a, b):
                assert sb == pytest.approx(sa, rel=1e-6, abs=1e-9)
            compared += len(a)
        n_lite, df_lite = lite.store.catalog.document_frequencies("samples", tokens)
        assert post.store.catalog.document_frequencies("samples", tokens) == (n_lite, df_lite)
    assert compared > 50


def _doc(catalog: Catalog, kb: str, i: int, words: list[str]) -> None:
    doc_id = f"d{i}"
    catalog.mark_pending(kb, doc_id, f"h{i}", doc_id, doc_id, {"sensitivity": "内部"})
    meta = {"sensitivity": "内部", "n": i, "date_int": 20200101 + i, "status": "现行有效"}
    chunks = [ChunkRecord(f"{doc_id}-{j}", doc_id, j, w, w.split(), meta)
              for j, w in enumerate(words)]
    catalog.stage_chunks(kb, doc_id, chunks)
    catalog.commit_document(kb, doc_id, f"h{i}", doc_id, doc_id, {"sensitivity": "内部"})


def test_lexical_totals_stay_exact_with_concurrent_writers_replaces_and_deletes(pg):
    url = pg.new_database()
    first = Catalog(url)
    first.create_kb("kb", "hash")
    writers = [Catalog(url) for _ in range(3)]       # three "processes": three connections
    errors: list[BaseException] = []

    def write(k: int, cat: Catalog) -> None:
        try:
            for i in range(k * 20, k * 20 + 20):
                _doc(cat, "kb", i, [f"公共 数据 开放 t{i}", f"数据 安全 t{i} t{i}"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k, w)) for k, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    _doc(first, "kb", 5, ["只有 一 块"])                # a replace: its old chunks leave the index
    for i in (7, 21, 59):
        assert first.delete_document("kb", f"d{i}") is not None
    db = Database(url)
    kb = db.execute("SELECT * FROM kbs WHERE name='kb'").fetchone()
    truth = db.execute("SELECT count(*) AS n, sum(n_tokens) AS t FROM chunks WHERE kb='kb'").fetchone()
    docs = db.execute("SELECT count(*) AS n, sum(n_tokens) AS t FROM documents WHERE kb='kb' AND n_tokens IS NOT NULL"
                      ).fetchone()
    assert (kb["lex_chunks"], kb["lex_chunk_tokens"]) == (truth["n"], truth["t"]) == (113, 57 * 8 - 8 + 3)
    assert (kb["lex_docs"], kb["lex_doc_tokens"]) == (docs["n"], docs["t"]) == (57, 451)
    postings = db.execute("SELECT count(*) AS n FROM lex_chunk_terms p LEFT JOIN chunks c ON c.rowid=p.row_id "
                          "WHERE p.kb='kb' AND c.rowid IS NULL").fetchone()
    assert postings["n"] == 0                          # no posting points at a gone chunk
    hits = first.lexical_search("kb", ["t5"], 5)
    assert hits == [] and first.lexical_search("kb", ["只有"], 5)[0][0] == "d5-0"
    assert [i for i, _ in first.lexical_search("kb", ["t21"], 5)] == []


def test_filters_are_sql_on_postgres_with_json_types_kept(pg):
    from assistant.filters import Filters

    cat = Catalog(pg.new_database())
    cat.create_kb("kb", "hash")
    for i in range(4):
        _doc(cat, "kb", i, [f"通知 t{i}"])
    where = Filters(date_from="2020-01-03").to_sql("c.metadata", "postgresql")
    assert sorted(i for i, _ in cat.lexical_search("kb", ["通知"], 10, where=where)) == ["d2-0", "d3-0"]
    where = Filters(status=["现行有效", "已废止"], extra={"n": 1}).to_sql("c.metadata", "postgresql")
    assert [i for i, _ in cat.lexical_search("kb", ["通知"], 10, where=where)] == ["d1-0"]
    where = Filters(extra={"n": "1"}).to_sql("c.metadata", "postgresql")     # "1" is not 1, as in Python
    assert cat.lexical_search("kb", ["通知"], 10, where=where) == []


def test_audit_is_append_only_for_the_app_role_and_for_the_owner(tmp_path, pg):
    import psycopg

    url = pg.new_database()
    c = make_container(tmp_path / "data", GOV_ASSISTANT_DATABASE__URL=url)
    c.audit.record(principal="k_1", operation="ask", outcome="ok", question="问")
    for sql in ("UPDATE audit SET outcome='x'", "DELETE FROM audit"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.audit._db.execute(sql)
    owner = url.replace(f"{pg_app()}@", f"{pg_owner()}@")
    with psycopg.connect(owner, autocommit=True) as conn:
        for sql in ("UPDATE audit SET outcome='x'", "DELETE FROM audit", "TRUNCATE audit"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(sql)
    assert [e["outcome"] for e in c.audit.tail(5)] == ["ok"]


def pg_app() -> str:
    import pg_fixtures
    return f"{pg_fixtures.APP}:{pg_fixtures.APP_PW}"


def pg_owner() -> str:
    import pg_fixtures
    return f"{pg_fixtures.OWNER}:{pg_fixtures.OWNER_PW}"


def test_check_mode_names_the_command_and_never_the_password(pg):
    from assistant.migrations import SchemaError, ensure_schema

    name = "t_unmigrated"
    pg.admin(f"DROP DATABASE IF EXISTS {name}")
    pg.admin(f"CREATE DATABASE {name}")
    url = pg.url(name, *pg_owner().split(":"))
    with pytest.raises(SchemaError) as err:
        ensure_schema(url, "check")
    assert "gov-assistant db upgrade" in str(err.value) and "owner-Secret" not in str(err.value)
    ensure_schema(url, "auto")                       # the owner may migrate
    ensure_schema(url, "check")


def test_unreachable_database_is_a_clear_error_without_the_password():
    with pytest.raises(DatabaseError) as err:
        Database("postgresql://app:TopSecret-9@127.0.0.1:1/gov", connect_timeout_s=2)
    assert "数据库不可用" in str(err.value) and "127.0.0.1:1" in str(err.value)
    assert "TopSecret" not in str(err.value)


def test_rate_limit_is_shared_by_replicas(pg):
    url = pg.new_database()
    replicas = [RateLimiter(4, db=Database(url)) for _ in range(2)]
    taken = 0
    for i in range(4):
        replicas[i % 2].check("k_1")
        taken += 1
    with pytest.raises(RateLimited) as err:
        replicas[0].check("k_1")
    assert 0 < err.value.retry_after_s <= 15 + 1
    replicas[1].check("k_2")                          # another key has its own bucket
    assert taken == 4
