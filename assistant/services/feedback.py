"""👍/👎 on answers, stored in SQLite under data_dir; exported as JSONL for evaluation, joined with the audit
record of the answer (question, knowledge base, returned sources, model) so each line is a labelled example.

Only the principal who asked (the audit row of the answer names its id) or an admin may rate an answer; any other
id — unknown, or someone else's — is "not found", so answer ids do not leak. One rating per rater and answer: a
new one replaces the previous (no flooding one answer with votes)."""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Iterator

from assistant.components.store.catalog import now_iso
from assistant.services.access import Principal
from assistant.services.audit import AuditLog
from assistant.db import Database

ANSWER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
RATINGS = ("up", "down")
MAX_COMMENT_CHARS = 2000


class AnswerNotFound(LookupError):
    """No answer with this id that the rater may rate (HTTP 404)."""


class FeedbackService:
    def __init__(self, path: Path, audit: AuditLog | None = None):
        self.audit = audit
        self._lock = threading.Lock()
        self._db = Database(path, "feedback")

    def add(self, answer_id: str, rating: str, comment: str = "", *, principal: Principal,
            question: str | None = None, answer: str | None = None, model: str | None = None,
            source_ids: list[str] | None = None, kbs: list[str] | None = None, **_: object) -> dict:
        """Callers that hold the answer (the UI) pass its context; API callers send only the id and the audit
        record of the answer fills in the rest at export time."""
        if not ANSWER_ID.match(answer_id or ""):
            raise ValueError("answer_id must be 1-64 letters, digits, '-' or '_'")
        if rating not in RATINGS:
            raise ValueError(f"rating must be one of {', '.join(RATINGS)}")
        if len(comment or "") > MAX_COMMENT_CHARS:
            raise ValueError(f"comment is longer than {MAX_COMMENT_CHARS} characters")
        origin = self.audit.find_answer(answer_id) if self.audit else None
        if origin is None or (principal.role != "admin" and origin["principal"] != principal.id):
            raise AnswerNotFound(f"answer {answer_id!r} not found")
        context = {k: v for k, v in {"question": question, "answer": answer, "model": model, "sources": source_ids,
                                     "kb": ",".join(kbs) if kbs else None}.items() if v}
        row = (rating, comment or "", now_iso(), json.dumps(context, ensure_ascii=False))
        with self._lock:
            old = self._db.execute("SELECT id FROM feedback WHERE answer_id=? AND principal=? ORDER BY id DESC",
                                   (answer_id, principal.id)).fetchone()
            if old:
                self._db.execute("UPDATE feedback SET rating=?, comment=?, created_at=?, context=? WHERE id=?",
                                 (*row, old["id"]))
                rating_id = old["id"]
            else:
                rating_id = self._db.execute(
                    "INSERT INTO feedback(rating, comment, created_at, context, answer_id, principal) "
                    "VALUES (?,?,?,?,?,?) RETURNING id", (*row, answer_id, principal.id)).fetchone()["id"]
        return {"id": rating_id, "answer_id": answer_id, "rating": rating}

    def records(self) -> Iterator[dict]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM feedback ORDER BY id").fetchall()
        for row in rows:
            rec = dict(row)
            context = json.loads(rec.pop("context") or "{}")
            origin = self.audit.find_answer(rec["answer_id"]) if self.audit else None
            if origin:
                rec.update({k: origin[k] for k in ("question", "kb", "sources", "model")})
                rec["asked_by"] = origin["principal"]
            rec.update(context)
            yield rec

    def export_jsonl(self) -> Iterator[str]:
        for rec in self.records():
            yield json.dumps(rec, ensure_ascii=False) + "\n"
