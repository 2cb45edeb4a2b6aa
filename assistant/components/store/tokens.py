"""The one tokenizer of lexical search: jieba search mode. The catalog stores each chunk's tokens space-joined and
its FTS5 tables index them as they are (lexical.py), so queries must be cut by the same function."""
from __future__ import annotations

import logging
import re

_NOISE = re.compile(r"^[\W_]+$", re.UNICODE)
_jieba = None


def tokenize(text: str) -> list[str]:
    """jieba search-mode tokens, lowercased, punctuation and whitespace dropped."""
    global _jieba
    if _jieba is None:
        import jieba
        jieba.setLogLevel(logging.WARNING)
        _jieba = jieba
    return [t.lower() for t in _jieba.cut_for_search(text) if t.strip() and not _NOISE.match(t)]
