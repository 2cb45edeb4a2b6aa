"""The lexical index on PostgreSQL: postings tables over the catalog's stored jieba tokens, ranked by the same BM25
as SQLite FTS5's bm25() (k1 = 1.2, b = 0.75, idf = ln((N - n + 0.5) / (n + 0.5)) floored at 1e-6, a row's length
in tokens, a query token repeated counts again), so the embedded and the scale-out profiles rank alike
(tests/components/test_pg_catalog.py compares them on the same documents).

Why postings and not tsvector: `ts_rank` has no idf (a term found in every chunk weighs as much as a rare one) and
the `simple` parser would re-split jieba's tokens (covid-19, 2020年); BM25 over postings needs neither.

Tables (one set for all knowledge bases, keyed by kb; created by Alembic, assistant/migrations):
  lex_chunk_terms(kb, term, row_id, tf, dl)   a chunk's distinct tokens (row_id = chunks.rowid, dl its length);
                                              the primary key (kb, term, row_id) INCLUDE (tf, dl) covers scoring
  lex_doc_terms(kb, term, row_id, tf, dl)     a document's, over all its chunks (row_id = documents.rowid)
  chunks.n_tokens, documents.n_tokens      row lengths (a document's null while it is not indexed); kbs.lex_* the totals BM25 needs (N, average length),
                                           updated in the document's commit, whose kbs row it already locks
Every change runs inside the catalog's transaction for the document: atomic per document, as with FTS5.
Document frequencies are counted at query time from the (kb, term) index: always exact, no hot counter rows for
concurrent writers to contend on.
"""
from __future__ import annotations

import math

K1, B = 1.2, 0.75
_TOKENS = "unnest(string_to_array({col}, ' '))"


class PostgresLexical:
    """The lexical operations the catalog calls on PostgreSQL (`db` is the catalog's Database, in a transaction)."""

    @staticmethod
    def drop(db, kb: str) -> None:
        for table in ("lex_chunk_terms", "lex_doc_terms"):
            db.execute(f"DELETE FROM {table} WHERE kb=?", (kb,))
        db.execute("UPDATE kbs SET lex_chunks=0, lex_chunk_tokens=0, lex_docs=0, lex_doc_tokens=0 WHERE name=?", (kb,))

    def fill(self, db, kb: str) -> None:
        for r in db.execute("SELECT doc_id FROM documents WHERE kb=? AND state='complete'", (kb,)).fetchall():
            self.add_chunks(db, kb, r["doc_id"])
            self.add_doc(db, kb, r["doc_id"])

    @staticmethod
    def add_chunks(db, kb: str, doc_id: str) -> None:
        db.execute("UPDATE chunks SET n_tokens=(SELECT count(*) FROM " + _TOKENS.format(col="tokens") +
                   " t WHERE t <> '') WHERE kb=? AND doc_id=?", (kb, doc_id))
        db.execute("INSERT INTO lex_chunk_terms(kb, term, row_id, tf, dl) SELECT c.kb, t, c.rowid, count(*), c.n_tokens "
                   "FROM chunks c, " + _TOKENS.format(col="c.tokens") + " t WHERE c.kb=? AND c.doc_id=? AND t <> '' "
                   "GROUP BY c.kb, t, c.rowid, c.n_tokens", (kb, doc_id))
        db.execute("UPDATE kbs SET lex_chunks=lex_chunks+s.n, lex_chunk_tokens=lex_chunk_tokens+s.t FROM "
                   "(SELECT count(*) AS n, COALESCE(sum(n_tokens), 0) AS t FROM chunks WHERE kb=? AND doc_id=?) s "
                   "WHERE name=?", (kb, doc_id, kb))

    @staticmethod
    def delete_chunks(db, kb: str, doc_id: str) -> None:
        db.execute("UPDATE kbs SET lex_chunks=lex_chunks-s.n, lex_chunk_tokens=lex_chunk_tokens-s.t FROM "
                   "(SELECT count(*) AS n, COALESCE(sum(n_tokens), 0) AS t FROM chunks WHERE kb=? AND doc_id=?) s "
                   "WHERE name=?", (kb, doc_id, kb))
        db.execute("DELETE FROM lex_chunk_terms p USING chunks c WHERE p.kb=? AND c.kb=? AND c.doc_id=? "
                   "AND p.row_id=c.rowid", (kb, kb, doc_id))

    @staticmethod
    def add_doc(db, kb: str, doc_id: str) -> None:
        """The document's row of the document index (as FTS5's: one when it has chunks, even without tokens);
        documents.n_tokens is null while it has none."""
        doc = db.execute("SELECT rowid FROM documents WHERE kb=? AND doc_id=?", (kb, doc_id)).fetchone()
        if doc is None or db.execute("SELECT 1 FROM chunks WHERE kb=? AND doc_id=? LIMIT 1",
                                     (kb, doc_id)).fetchone() is None:
            return
        db.execute("UPDATE documents SET n_tokens=(SELECT COALESCE(sum(n_tokens), 0) FROM chunks WHERE kb=? AND "
                   "doc_id=?) WHERE kb=? AND doc_id=?", (kb, doc_id, kb, doc_id))
        db.execute("INSERT INTO lex_doc_terms(kb, term, row_id, tf, dl) SELECT c.kb, t, d.rowid, count(*), d.n_tokens "
                   "FROM documents d JOIN chunks c ON c.kb=d.kb AND c.doc_id=d.doc_id, "
                   + _TOKENS.format(col="c.tokens") + " t WHERE d.kb=? AND d.doc_id=? AND t <> '' "
                   "GROUP BY c.kb, t, d.rowid, d.n_tokens", (kb, doc_id))
        db.execute("UPDATE kbs SET lex_docs=lex_docs+1, lex_doc_tokens=lex_doc_tokens+d.n_tokens FROM documents d "
                   "WHERE d.kb=? AND d.doc_id=? AND name=?", (kb, doc_id, kb))

    @staticmethod
    def delete_doc(db, kb: str, doc_id: str) -> None:
        doc = db.execute("SELECT rowid, n_tokens FROM documents WHERE kb=? AND doc_id=? AND n_tokens IS NOT NULL",
                         (kb, doc_id)).fetchone()
        if doc is None:
            return
        db.execute("DELETE FROM lex_doc_terms WHERE kb=? AND row_id=?", (kb, doc["rowid"]))
        db.execute("UPDATE kbs SET lex_docs=lex_docs-1, lex_doc_tokens=lex_doc_tokens-? WHERE name=?",
                   (doc["n_tokens"], kb))
        db.execute("UPDATE documents SET n_tokens=NULL WHERE kb=? AND doc_id=?", (kb, doc_id))

    @staticmethod
    def frequencies(db, kb: str, terms: list[str], level: str = "chunk") -> dict[str, int]:
        table = "lex_chunk_terms" if level == "chunk" else "lex_doc_terms"
        dfs = dict.fromkeys(terms, 0)
        if terms:
            dfs.update({r["term"]: r["n"] for r in db.execute(
                f"SELECT term, count(*) AS n FROM {table} WHERE kb=? AND term = ANY(?) GROUP BY term",
                (kb, list(terms))).fetchall()})
        return dfs

    def search(self, db, kb: str, tokens: list[str], n: int, level: str,
               where: tuple[str, list] | None) -> list[tuple[str, float]]:
        """(chunk_id or doc_id, BM25 score) best first; where: a condition over the chunk row `c` (chunk level)."""
        weights: dict[str, int] = {}
        for t in tokens:
            t = t.replace("\x00", "").lower()
            if t:
                weights[t] = weights.get(t, 0) + 1
        if not weights or n <= 0:
            return []
        stats = db.execute("SELECT lex_chunks, lex_chunk_tokens, lex_docs, lex_doc_tokens FROM kbs WHERE name=?",
                           (kb,)).fetchone()
        if stats is None:
            return []
        rows, total = (stats["lex_chunks"], stats["lex_chunk_tokens"]) if level == "chunk" else \
            (stats["lex_docs"], stats["lex_doc_tokens"])
        if rows <= 0:
            return []
        avg = max(total / rows, 1e-9)
        dfs = self.frequencies(db, kb, list(weights), level)
        terms = [t for t in weights if dfs[t]]
        if not terms:
            return []
        idf = [max(math.log((rows - dfs[t] + 0.5) / (dfs[t] + 0.5)), 1e-6) * weights[t] for t in terms]
        if level == "chunk":
            table, rows_table, ident = "lex_chunk_terms", "chunks", "c.chunk_id"
        elif level == "document":
            table, rows_table, ident, where = "lex_doc_terms", "documents", "c.doc_id", None
        else:
            raise ValueError(f"unknown lexical level {level!r}")
        # scored from the postings alone (an index-only scan of the covering primary key); the rows table is read
        # for the top n only, or, with a filter, for the scored rows the filter must see
        scored = (f"SELECT p.row_id, sum(q.w * p.tf * {K1 + 1} / (p.tf + {K1} * ({1 - B} + {B} * p.dl / ?))) AS s "
                  f"FROM unnest(?::text[], ?::float8[]) AS q(term, w) JOIN {table} p ON p.kb=? AND p.term=q.term "
                  "GROUP BY p.row_id")
        args: list = [avg, terms, idf, kb]
        if where is None:
            sql = (f"WITH s AS ({scored} ORDER BY s DESC, p.row_id LIMIT ?) SELECT {ident} AS id, s.s FROM s "
                   f"JOIN {rows_table} c ON c.rowid=s.row_id ORDER BY s.s DESC, s.row_id")
            args.append(n)
        else:
            cond, extra = where
            sql = (f"WITH s AS ({scored}) SELECT {ident} AS id, s.s FROM s JOIN {rows_table} c ON c.rowid=s.row_id "
                   f"WHERE ({cond}) ORDER BY s.s DESC, s.row_id LIMIT ?")
            args += [*extra, n]
        return [(r["id"], float(r["s"])) for r in db.execute(sql, args).fetchall()]
