"""Append-only audit log (SQLite under data_dir): who asked what of which knowledge base, what came back.

Triggers reject UPDATE and DELETE, so rows can only be added through this code or any other SQLite client.
Fields are chosen so that no secret can enter: no headers, no query strings, no API keys. `principal` is the
principal's id (the API key's id, not its name: names are reused after a revoke).
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Iterator

from assistant.components.store.catalog import now_iso
from assistant.db import Database

MAX_QUESTION_CHARS = 2000
# the operations whose rows record an answer and who asked it (API routes by name, the UI's chat handler); other
# rows may carry an answer id too (a feedback request names the answer it rates)
ANSWER_OPERATIONS = ("ask", "chat_completions", "ui.chat.ask")
FIELDS = ("ts", "principal", "client_ip", "operation", "method", "path", "status", "outcome", "kb", "question",
          "sources", "model", "answer_id", "latency_ms", "detail")


class AuditLog:
    def __init__(self, path: Path | str):
        """path: the SQLite file, or the scale-out profile's postgresql:// URL (append-only by trigger and by the
        app role's grants: assistant/migrations)."""
        self.path = path
        self._lock = threading.Lock()
        self._db = Database(path, "audit")
        if self._db.postgres:
            return
        self._db.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: durable across crashes, fast per row

    def record(self, *, principal: str, operation: str, outcome: str, client_ip: str | None = None,
               method: str | None = None, path: str | None = None, status: int | None = None,
               kb: str | list[str] | None = None, question: str | None = None, sources: list[str] | None = None,
               model: str | None = None, answer_id: str | None = None, latency_ms: float | None = None,
               detail: dict | None = None) -> None:
        if isinstance(kb, list):
            kb = ",".join(kb)
        row = (now_iso(), principal, client_ip, operation, method, path, status, outcome, kb,
               (question or None) and question[:MAX_QUESTION_CHARS], json.dumps(sources or [], ensure_ascii=False),
               model, answer_id, None if latency_ms is None else round(latency_ms, 1),
               json.dumps(detail, ensure_ascii=False) if detail else None)
        with self._lock:
            self._db.execute(f"INSERT INTO audit({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})", row)

    def tail(self, n: int = 20) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (max(n, 0),)).fetchall()
        return [_entry(r) for r in reversed(rows)]

    def iter_all(self) -> Iterator[dict]:
        last = 0
        while True:   # in pages, so an export never holds the lock (or the whole log) for long
            with self._lock:
                rows = self._db.execute("SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT 1000", (last,)).fetchall()
            if not rows:
                return
            for r in rows:
                yield _entry(r)
            last = rows[-1]["id"]

    def export(self, out: Path) -> int:
        n = 0
        with open(out, "w", encoding="utf-8") as f:
            for entry in self.iter_all():
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
                n += 1
        return n

    def find_answer(self, answer_id: str) -> dict | None:
        """The row that recorded this answer (its principal asked it), or None."""
        marks = ", ".join("?" * len(ANSWER_OPERATIONS))
        with self._lock:
            row = self._db.execute(f"SELECT * FROM audit WHERE answer_id=? AND operation IN ({marks}) ORDER BY id "
                                   "LIMIT 1", (answer_id, *ANSWER_OPERATIONS)).fetchone()
        return _entry(row) if row else None


def _entry(row) -> dict:
    entry = dict(row)
    entry["sources"] = json.loads(entry["sources"] or "[]")
    entry["detail"] = json.loads(entry["detail"]) if entry.get("detail") else None
    return entry
