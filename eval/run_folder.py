"""A run folder's records: items.jsonl (append-only, resumable) and the configuration fingerprint that keeps one
folder to one configuration. Read by the runner (writing) and the report (reading)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


class ItemLog:
    """items.jsonl, append-only; the last record of a key wins."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, dict]:
        records: dict[str, dict] = {}
        if not self.path.exists():
            return records
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue          # a line cut short by an interruption: that item is redone
                if isinstance(rec, dict) and rec.get("key"):
                    records[rec["key"]] = rec
        return records

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line       # close a line an interruption cut short
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


# the settings that can change evaluation results or timings (not the API, server or demo sections)
EVAL_SETTINGS = ("data_dir", "models_dir", "prompts_dir", "llm", "embedding", "vectorstore", "chunking", "retrieval",
                 "rerank", "answer", "profiles")


def settings_snapshot(container) -> dict:
    data = container.settings.model_dump(mode="json")
    data = {k: data[k] for k in EVAL_SETTINGS if k in data}
    data.get("llm", {}).get("openai", {}).pop("api_key", None)    # never written to a report
    data["prompts"] = prompts_fingerprint()
    return data


def prompts_fingerprint() -> str:
    from assistant.prompts import prompts_digest
    return prompts_digest()


def _without_unset(node):
    """Options that are off (null, "none") leave the fingerprint: a release that adds an option, off by default,
    keeps earlier run folders resumable."""
    if isinstance(node, dict):
        return {k: _without_unset(v) for k, v in node.items() if v is not None and v != "none"}
    return node


def config_fingerprint(container) -> str:
    snap = settings_snapshot(container)
    snap.pop("profiles", None)
    return hashlib.sha256(json.dumps(_without_unset(snap), sort_keys=True, ensure_ascii=False).encode()
                          ).hexdigest()[:16]


def load_items(out: Path) -> list[dict]:
    return list(ItemLog(Path(out) / "items.jsonl").load().values())
