"""The demo knowledge base: the project's sample documents (validity from samples/metadata.jsonl) plus the
national-law corpus (all of it by default: its text is searchable by BM25 in seconds, its vectors are filled by
the server's background worker). Idempotent: a second run finds everything unchanged in seconds."""
from __future__ import annotations

import json
from pathlib import Path

from assistant.progress import Progress, no_progress
from assistant.services.access import LOCAL_ADMIN
from assistant.settings import PROJECT_ROOT
from ingest.loaders import LoadError, SourceDocument, discover, load_file
from assistant.pipeline import IngestReport


def sample_documents(samples_dir: Path | None = None) -> list[SourceDocument | LoadError]:
    root = Path(samples_dir or PROJECT_ROOT / "samples")
    if not root.is_absolute():
        root = PROJECT_ROOT / root
    meta = {}
    meta_file = root / "metadata.jsonl"
    if meta_file.exists():
        for line in meta_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                meta[rec.pop("file")] = rec
    files, problems = discover([root / "docs"])
    docs: list[SourceDocument | LoadError] = list(problems)
    for path in files:
        try:
            # the source name is relative, so every checkout derives the same document ids
            for doc in load_file(path, source_name=f"samples/{path.name}"):
                if isinstance(doc, SourceDocument):
                    doc.metadata.update(meta.get(path.name, {}))
                docs.append(doc)
        except LoadError as exc:
            docs.append(exc)
    return docs


def build_demo(container, progress: Progress = no_progress) -> list[IngestReport]:
    s = container.settings.demo
    kbs = container.knowledge_bases
    if container.store.catalog.get_kb(s.kb) is None:
        kbs.create(s.kb, "演示知识库：示例政务文件 + 国家法律法规", principal=LOCAL_ADMIN)
    reports = [kbs.ingest_documents(s.kb, sample_documents(Path(s.samples_dir)), progress, principal=LOCAL_ADMIN)]
    if s.laws:
        names = None if "*" in s.laws else s.laws
        reports.append(kbs.ingest_laws(s.kb, names, progress, principal=LOCAL_ADMIN, wait=s.wait_for_law_vectors))
    return reports


def demo_admin_key(container) -> tuple[Path, str]:
    """The demo's admin API key: created once and kept (mode 0600) in the data directory so a second
    `make demo` can show it again. Real deployments create named keys with `gov-assistant keys create`."""
    key_file = Path(container.settings.data_dir) / "demo-admin.key"
    keys = container.api_keys
    if key_file.exists():
        secret = key_file.read_text().strip()
        try:
            keys.authenticate(secret)
            return key_file, secret
        except Exception:  # noqa: BLE001 - revoked or from another data dir: make a new one
            key_file.unlink()
    secret, _ = keys.create(f"demo-admin-{int(__import__('time').time())}", "admin", ["*"], [])
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.touch(mode=0o600)
    key_file.write_text(secret + "\n")
    return key_file, secret
