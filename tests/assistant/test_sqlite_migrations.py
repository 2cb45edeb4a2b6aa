"""The SQLite files' schemas under Alembic (assistant/migrations/sqlite, issue #18): a new file is created at
its branch's head, a file of an earlier release (no alembic_version, any older column set) is upgraded in
place with its rows, every revision applies up and down, the heads the app compares with are the scripts'
heads, and two processes opening one old file migrate it once."""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant.migrations.sqlite import HEADS, HERE, alembic_config, downgrade, upgrade
from assistant.sqlite import open_db

ROOT = Path(__file__).resolve().parents[2]

# the oldest schema each file had under the in-code migrations (before path, origin, embedded, FTS5, levels,
# clearance, detail), with rows; the stores whose schema never changed are as today
OLD = {
    "catalog": """
      CREATE TABLE kbs (name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', embedding TEXT NOT NULL,
        created_at TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE documents (kb TEXT NOT NULL REFERENCES kbs(name) ON DELETE CASCADE, doc_id TEXT NOT NULL,
        title TEXT, source TEXT, content_hash TEXT NOT NULL, state TEXT NOT NULL,
        n_chunks INTEGER NOT NULL DEFAULT 0, metadata TEXT NOT NULL DEFAULT '{}', ingested_at TEXT NOT NULL,
        PRIMARY KEY (kb, doc_id));
      CREATE TABLE chunks (kb TEXT NOT NULL, chunk_id TEXT NOT NULL, doc_id TEXT NOT NULL,
        position INTEGER NOT NULL, text TEXT NOT NULL, tokens TEXT NOT NULL, metadata TEXT NOT NULL,
        PRIMARY KEY (kb, chunk_id),
        FOREIGN KEY (kb, doc_id) REFERENCES documents(kb, doc_id) ON DELETE CASCADE);
      CREATE INDEX chunks_by_doc ON chunks(kb, doc_id);
      INSERT INTO kbs VALUES ('kb', '', 'hash', '2025-01-01', 3);
      INSERT INTO documents VALUES ('kb', 'fund', '公积金办法', '/srv/docs/fund.txt', 'h1', 'complete', 2,
        '{"source": "/srv/docs/fund.txt"}', '2025-01-01');
      INSERT INTO documents VALUES ('kb', 'park', '停车指南', 'park.txt', 'h2', 'complete', 1,
        '{"source": "park.txt", "sensitivity": "公开"}', '2025-01-02');
      INSERT INTO chunks VALUES ('kb', 'fund-0', 'fund', 0, '住房公积金提取', '住房 公积金 提取',
        '{"source": "/srv/docs/fund.txt"}');
      INSERT INTO chunks VALUES ('kb', 'fund-1', 'fund', 1, '公积金贷款额度', '公积金 贷款 额度',
        '{"source": "/srv/docs/fund.txt"}');
      INSERT INTO chunks VALUES ('kb', 'park-0', 'park', 0, '路内停车收费', '路内 停车 收费',
        '{"source": "park.txt", "sensitivity": "公开"}');
    """,
    "api_keys": """
      CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL, role TEXT NOT NULL, kbs TEXT NOT NULL, departments TEXT NOT NULL,
        created_at TEXT NOT NULL, revoked_at TEXT, last_used_at TEXT);
      INSERT INTO api_keys VALUES ('k_00000001', 'old', 'abc', 'gak_abcd', 'reader', '["kb"]', '[]',
        '2025-01-01', NULL, NULL);
    """,
    "audit": """
      CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, principal TEXT NOT NULL,
        client_ip TEXT, operation TEXT NOT NULL, method TEXT, path TEXT, status INTEGER,
        outcome TEXT NOT NULL, kb TEXT, question TEXT, sources TEXT NOT NULL DEFAULT '[]', model TEXT,
        answer_id TEXT, latency_ms REAL);
      CREATE INDEX audit_by_answer ON audit(answer_id);
      CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
      CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
      INSERT INTO audit(ts, principal, operation, outcome, question)
        VALUES ('2025-01-01', 'k_1', 'ask', 'ok', '问');
    """,
    "directory": """
      CREATE TABLE rules (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, match TEXT NOT NULL,
        role TEXT, department TEXT, clearance TEXT, created_at TEXT NOT NULL, created_by TEXT NOT NULL);
      CREATE TABLE grants (kb TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL, access TEXT NOT NULL,
        created_at TEXT NOT NULL, created_by TEXT NOT NULL, PRIMARY KEY (kb, kind, subject));
      INSERT INTO rules(kind, match, role, created_at, created_by)
        VALUES ('group', 'editors', 'editor', 'x', 'a');
      INSERT INTO grants VALUES ('kb', 'department', '办公室', 'read', 'x', 'a');
    """,
    "feedback": """
      CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, answer_id TEXT NOT NULL,
        rating TEXT NOT NULL, comment TEXT NOT NULL, principal TEXT NOT NULL, created_at TEXT NOT NULL,
        context TEXT NOT NULL DEFAULT '{}');
      INSERT INTO feedback(answer_id, rating, comment, principal, created_at)
        VALUES ('a1', 'up', '', 'k_1', 'x');
    """,
    "jobs": """
      CREATE TABLE jobs (id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at TEXT NOT NULL,
        data TEXT NOT NULL);
      INSERT INTO jobs VALUES ('job_1', 'reader', '2025-01-01', '{}');
    """,
    "sso": """
      CREATE TABLE sso_once (kind TEXT NOT NULL, key_hash TEXT NOT NULL, data TEXT NOT NULL,
        expires_at REAL NOT NULL, PRIMARY KEY (kind, key_hash));
      INSERT INTO sso_once VALUES ('state', 'h', '{}', 1e12);
    """,
    "embedding_cache": """
      CREATE TABLE vectors (space TEXT, hash TEXT, vec BLOB, PRIMARY KEY (space, hash));
      INSERT INTO vectors VALUES ('s', 'h', x'0000803f');
    """,
}
ROWS = {"catalog": {"kbs": 1, "documents": 2, "chunks": 3}, "api_keys": {"api_keys": 1},
        "audit": {"audit": 1}, "directory": {"rules": 1, "grants": 1}, "feedback": {"feedback": 1},
        "jobs": {"jobs": 1}, "sso": {"sso_once": 1}, "embedding_cache": {"vectors": 1}}


def make_old(path: Path, store: str) -> Path:
    db = sqlite3.connect(path)
    db.executescript(OLD[store])
    db.close()
    return path


def schema(path: Path) -> dict:
    """Every table's columns (name, type, not null, default, pk) and foreign keys, the tables and triggers by
    name, the indexes by their SQL."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT type, name, sql FROM sqlite_master "
                          "WHERE name NOT LIKE 'sqlite^_%' ESCAPE '^'")
        objects = {(kind, name, sql if kind == "index" else None) for kind, name, sql in rows}
        tables = [t for kind, t, _ in objects if kind == "table"]
        columns = {t: sorted(tuple(r[1:]) for r in db.execute(f'PRAGMA table_info("{t}")')) for t in tables}
        keys = {t: sorted(tuple(r[2:]) for r in db.execute(f'PRAGMA foreign_key_list("{t}")'))
                for t in tables}
        return {"objects": objects, "columns": columns, "foreign_keys": keys}
    finally:
        db.close()


def version(path: Path) -> str | None:
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None
    except sqlite3.OperationalError:
        return None
    finally:
        db.close()


def count(path: Path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def test_heads_are_the_scripts_heads_and_every_store_opened_has_a_branch():
    from alembic.script import ScriptDirectory

    from assistant.migrations import head as postgres_head

    script = ScriptDirectory.from_config(alembic_config(Path("unused"), "catalog"))
    heads = {}
    for rev in script.get_revisions("heads"):
        (label,) = script.get_revision(rev.revision).branch_labels | {b for b in rev.branch_labels}
        heads[label] = rev.revision
    assert heads == HEADS                                     # one head per branch, the one the app expects
    for store in HEADS:                                       # each branch is one line from its own base
        revs = list(script.walk_revisions("base", f"{store}@head"))
        assert revs[-1].down_revision is None and store in revs[-1].branch_labels
    opened = set()
    for f in (ROOT / "assistant").rglob("*.py"):
        opened |= set(re.findall(r'(?:Database|open_db)\([^()]*?, "(\w+)"', f.read_text(encoding="utf-8")))
    assert opened == set(HEADS)
    assert postgres_head() == "0005"                          # PostgreSQL's history is apart (0005: originals)


@pytest.mark.parametrize("store", sorted(HEADS))
def test_every_revision_applies_up_and_down_on_sqlite(tmp_path, store):
    from alembic.script import ScriptDirectory

    path = tmp_path / f"{store}.sqlite3"
    script = ScriptDirectory.from_config(alembic_config(path, store))
    for rev in reversed(list(script.walk_revisions("base", f"{store}@head"))):
        upgrade(path, store, rev.revision)
        assert version(path) == rev.revision
    at_head = schema(path)
    downgrade(path, store)
    assert version(path) is None
    assert {name for _, name, _ in schema(path)["objects"]} == {"alembic_version"}
    upgrade(path, store)
    assert schema(path) == at_head and version(path) == HEADS[store]


def test_a_new_data_directory_is_created_at_head_through_the_stores(tmp_path):
    from assistant.components.store.catalog import Catalog
    from assistant.services.audit import AuditLog
    from assistant.services.auth import ApiKeyStore

    catalog = Catalog(tmp_path / "catalog.sqlite3")
    catalog.create_kb("kb", "hash")
    ApiKeyStore(tmp_path / "api_keys.sqlite3").create("k", "reader", ["kb"], clearance="内部")
    AuditLog(tmp_path / "audit.sqlite3").record(principal="p", operation="ask", outcome="ok", detail={"a": 1})
    for store in ("catalog", "api_keys", "audit"):
        assert version(tmp_path / f"{store}.sqlite3") == HEADS[store]
    objects = {name for _, name, _ in schema(tmp_path / "catalog.sqlite3")["objects"]}
    assert {"kbs", "documents", "chunks", "staged_chunks", "docs_by_law", "chunks_unembedded",
            "docs_unique_content", "lex_c_kb", "lex_d_kb", "lex_v_kb"} <= objects
    assert catalog.unique_content


@pytest.mark.parametrize("store", sorted(HEADS))
def test_an_old_unstamped_file_is_upgraded_in_place_with_its_rows(tmp_path, store):
    fresh = tmp_path / "fresh.sqlite3"
    open_db(fresh, store, default_level="内部").close()
    old = make_old(tmp_path / "old.sqlite3", store)
    open_db(old, store, default_level="内部").close()
    assert version(old) == HEADS[store]
    assert {t: count(old, t) for t in ROWS[store]} == ROWS[store]
    want, got = schema(fresh), schema(old)
    if store == "catalog":          # the old catalog's knowledge base brought its FTS5 tables
        got["objects"] = {o for o in got["objects"] if "_kb" not in o[1]}
        got["columns"] = {t: c for t, c in got["columns"].items() if "_kb" not in t}
        got["foreign_keys"] = {t: c for t, c in got["foreign_keys"].items() if "_kb" not in t}
    assert got == want              # the baseline leaves today's schema, whatever the file started from
    open_db(old, store).close()     # at head: opened again, nothing to do
    assert {t: count(old, t) for t in ROWS[store]} == ROWS[store]


def test_an_old_catalog_opens_with_its_rows_moved_as_the_in_code_migrations_did(tmp_path):
    from assistant.components.store.catalog import Catalog

    path = make_old(tmp_path / "catalog.sqlite3", "catalog")
    catalog = Catalog(path, default_level="内部")
    fund, park = catalog.get_document("kb", "fund"), catalog.get_document("kb", "park")
    assert (fund["source"], fund["path"], fund["origin"]) == ("fund.txt", "/srv/docs/fund.txt", None)
    assert (park["source"], park["path"]) == ("park.txt", None)
    assert fund["metadata"]["sensitivity"] == "内部" and park["metadata"]["sensitivity"] == "公开"
    chunks = catalog.get_chunks("kb", ["fund-0", "fund-1", "park-0"])
    assert {c["metadata"]["source"] for k, c in chunks.items() if k.startswith("fund")} == {"fund.txt"}
    assert {c["metadata"]["sensitivity"] for c in chunks.values()} == {"内部", "公开"}
    assert catalog.unembedded("kb", 10) == [] and catalog.kb_version("kb") == 3   # their vectors were written
    assert [i for i, _ in catalog.lexical_search("kb", ["公积金"], 5)] in (["fund-0", "fund-1"],
                                                                          ["fund-1", "fund-0"])
    assert [i for i, _ in catalog.lexical_search("kb", ["公积金", "停车"], 5, level="document")][:2] \
        in (["fund", "park"], ["park", "fund"])
    catalog.delete_document("kb", "fund")     # the FTS5 rows the baseline wrote are deleted by their text
    assert catalog.lexical_search("kb", ["公积金"], 5) == []
    assert [i for i, _ in catalog.lexical_search("kb", ["停车"], 5, level="document")] == ["park"]


def test_a_revision_after_the_baseline_applies_to_an_old_file_once_it_is_stamped(tmp_path):
    """What the next schema change does: an old file gets the baseline, is stamped, then the new revision."""
    from alembic import command

    scripts = tmp_path / "scripts"
    shutil.copytree(HERE, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "catalog_0002_note.py").write_text('''
"""catalog: a note on documents (test only)."""
import sqlalchemy as sa
from assistant.migrations.sqlite.helpers import add_column, drop_column

revision = "catalog_0002"
down_revision = "catalog_0001"
branch_labels = None
depends_on = None


def upgrade():
    add_column("documents", sa.Column("note", sa.Text, nullable=False, server_default="-"))


def downgrade():
    drop_column("documents", "note")
''', encoding="utf-8")
    path = make_old(tmp_path / "catalog.sqlite3", "catalog")
    cfg = alembic_config(path, "catalog", default_level="内部")
    cfg.set_main_option("script_location", str(scripts))
    command.upgrade(cfg, "catalog@head")
    assert version(path) == "catalog_0002"
    db = sqlite3.connect(path)
    assert db.execute("SELECT doc_id, source, path, note FROM documents ORDER BY doc_id").fetchall() == [
        ("fund", "fund.txt", "/srv/docs/fund.txt", "-"), ("park", "park.txt", None, "-")]
    db.close()
    rowids = sqlite3.connect(path).execute("SELECT rowid, doc_id FROM documents ORDER BY rowid").fetchall()
    command.downgrade(cfg, "catalog@catalog_0001")
    assert version(path) == "catalog_0001" and count(path, "chunks") == 3
    assert sqlite3.connect(path).execute("SELECT rowid, doc_id FROM documents ORDER BY rowid").fetchall() \
        == rowids
    fresh = tmp_path / "fresh.sqlite3"
    open_db(fresh, "catalog").close()
    got = schema(path)
    got["objects"] = {o for o in got["objects"] if "_kb" not in o[1]}
    got["columns"] = {t: c for t, c in got["columns"].items() if "_kb" not in t}
    got["foreign_keys"] = {t: c for t, c in got["foreign_keys"].items() if "_kb" not in t}
    assert got == schema(fresh)          # indexes (expression, partial) and ON DELETE CASCADE as they were


def test_two_processes_opening_one_old_catalog_migrate_it_once(tmp_path):
    path = make_old(tmp_path / "catalog.sqlite3", "catalog")
    code = ("import sys; from pathlib import Path; from assistant.components.store.catalog import Catalog; "
            "Catalog(Path(sys.argv[1])); print('ok')")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    db = sqlite3.connect(path)
    # each chunk and document is in the FTS5 tables once (a second fill would count it twice)
    assert db.execute('SELECT doc FROM "lex_v_kb" WHERE term=?', ("公积金",)).fetchone()[0] == 2
    assert db.execute('SELECT COUNT(*) FROM "lex_d_kb" WHERE "lex_d_kb" MATCH ?',
                      ('"公积金"',)).fetchone()[0] == 1
    # as the in-code migration did: the document's metadata is left as it was, its chunks' source moves
    meta = db.execute("SELECT metadata FROM documents WHERE doc_id='fund'").fetchone()[0]
    assert json.loads(meta)["source"] == "/srv/docs/fund.txt"
    db.close()
    assert version(path) == HEADS["catalog"]


def test_a_file_newer_than_the_app_names_the_file(tmp_path):
    from assistant.migrations.sqlite import SchemaError

    path = tmp_path / "jobs.sqlite3"
    open_db(path, "jobs").close()
    db = sqlite3.connect(path)
    db.execute("UPDATE alembic_version SET version_num='jobs_0099'")
    db.commit()
    db.close()
    with pytest.raises(SchemaError, match=r"jobs\.sqlite3: cannot bring the jobs schema to jobs_0001 "
                                          r"\(at jobs_0099\)"):
        open_db(path, "jobs")


def test_opening_files_at_head_loads_neither_alembic_nor_sqlalchemy(tmp_path):
    """The embedded start-up: a restart pays one query per file, not Alembic's import."""
    for store in HEADS:
        open_db(tmp_path / f"{store}.sqlite3", store).close()
    code = ("import sys; from pathlib import Path; from assistant.sqlite import open_db; "
            f"[open_db(Path(sys.argv[1]) / f'{{s}}.sqlite3', s).close() for s in {sorted(HEADS)!r}]; "
            "print(sorted(m for m in ('alembic', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_opening_waits_for_another_connections_lock_longer_than_sqlites_default(tmp_path):
    # an old (rollback-journal) file locked by another process's migration for over sqlite3's default 5 s
    path = tmp_path / "busy.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t(x)")
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(5.5, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        t0 = time.monotonic()
        open_db(path).close()
        assert time.monotonic() - t0 >= 5.0
    finally:
        release.join()
        holder.close()
