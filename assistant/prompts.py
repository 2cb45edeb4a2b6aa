"""Prompts are files in prompts/; this module only reads them."""
from __future__ import annotations

from functools import lru_cache

from assistant.settings import PROMPTS_DIR


@lru_cache(maxsize=None)
def load_prompt(name: str) -> str:
    path = PROMPTS_DIR / f"{name}.md"
    if not path.exists():
        raise FileNotFoundError(f"prompt file missing: {path}")
    return path.read_text(encoding="utf-8").strip()
