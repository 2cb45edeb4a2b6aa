"""What opening the embedded profile's SQLite files costs at start-up (issue #18: their schemas under
Alembic): each run is a fresh process that imports the stores and opens all eight files under one data
directory, first on an empty directory (every file created), then again on the same one (what a restart pays:
the schemas are at head). Prints the medians and whether SQLAlchemy or Alembic was imported on the way.
Byte code is cached (in a temporary PYTHONPYCACHEPREFIX, warmed first) as in an installed app, so a module's
compile time is not counted.

    python benchmarks/sqlite_open.py --runs 15
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from langchain_core.embeddings import Embeddings
from assistant.components.embeddings.cache import CachedEmbeddings
from assistant.components.identity.once import OneTimeStore
from assistant.components.store.catalog import Catalog
from assistant.services.audit import AuditLog
from assistant.services.auth import ApiKeyStore
from assistant.services.classification import Classification
from assistant.services.directory import Directory
from assistant.services.feedback import FeedbackService
from assistant.services.jobs import JobManager
from assistant.settings import ClassificationSettings
t1 = time.perf_counter()

class Zero(Embeddings):
    def embed_documents(self, texts): return [[0.0] for _ in texts]
    def embed_query(self, text): return [0.0]

data = Path(sys.argv[1])
opened = [Catalog(data / "catalog.sqlite3"), ApiKeyStore(data / "api_keys.sqlite3"),
          Directory(data / "directory.sqlite3", Classification(ClassificationSettings())),
          OneTimeStore(data / "sso.sqlite3"), JobManager(path=data / "jobs.sqlite3")]
audit = AuditLog(data / "audit.sqlite3")
opened += [audit, FeedbackService(data / "feedback.sqlite3", audit),
           CachedEmbeddings(Zero(), data / "embedding_cache.sqlite3", "zero")]
t2 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1000, "open_ms": (t2 - t1) * 1000,
                  "sqlalchemy": "sqlalchemy" in sys.modules, "alembic": "alembic" in sys.modules}))
"""


def run(data: Path, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(data)], cwd=ROOT, capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    created, again = [], []
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        run(Path(tmp) / "warm", env)            # byte code written (Alembic's too: a new file is created)
        for i in range(args.runs):
            data = Path(tmp) / f"d{i}"
            created.append(run(data, env))      # every file created
            again.append(run(data, env))        # every file at head: a restart
    report = {}
    for name, rows in (("create", created), ("at_head", again)):
        report[name] = {"open_ms_p50": round(statistics.median(r["open_ms"] for r in rows), 1),
                        "import_ms_p50": round(statistics.median(r["import_ms"] for r in rows), 1),
                        "sqlalchemy_imported": any(r["sqlalchemy"] for r in rows),
                        "alembic_imported": any(r["alembic"] for r in rows)}
    print(json.dumps({"runs": args.runs, **report}, indent=1))


if __name__ == "__main__":
    main()
