"""Prompts are files in prompts/; this module only reads them.

A deployment can keep its own wording without editing the package: `prompts_dir` (GOV_ASSISTANT_PROMPTS_DIR)
names a folder whose files override prompts/ by name (answer_system.md, ...); files it lacks come from prompts/.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from assistant.settings import PROMPTS_DIR, SettingsError

_override: Path | None = None


def use_prompts_dir(path: Path | str | None) -> None:
    """Set the override folder (the container does this from settings); None means prompts/ only."""
    global _override
    new = Path(path).expanduser().resolve() if path else None
    if new is not None and not new.is_dir():
        raise SettingsError(f"prompts_dir: {new} is not a folder")
    if new != _override:
        _override = new
        load_prompt.cache_clear()


def prompt_path(name: str) -> Path:
    if _override is not None and (_override / f"{name}.md").is_file():
        return _override / f"{name}.md"
    return PROMPTS_DIR / f"{name}.md"


@lru_cache(maxsize=None)
def load_prompt(name: str) -> str:
    path = prompt_path(name)
    if not path.exists():
        raise FileNotFoundError(f"prompt file missing: {path}")
    return path.read_text(encoding="utf-8").strip()


def prompts_digest() -> str:
    """Digest of the prompt files in effect: they change answers as much as settings do (eval run folders)."""
    names = sorted({p.stem for p in PROMPTS_DIR.glob("*.md")}
                   | ({p.stem for p in _override.glob("*.md")} if _override else set()))
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode() + b"\0" + prompt_path(name).read_bytes() + b"\0")
    return h.hexdigest()[:12]
