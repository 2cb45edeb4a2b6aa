"""Focused context: each passage cut to the sentences that share the question's terms, in their original order.
Shorter prompts prefill faster on CPU and leave the small model less unrelated text to copy."""
from __future__ import annotations

from typing import Callable

from assistant.components.store.tokens import tokenize
from ingest.chunking import split_sentences


def focus_text(text: str, terms: set[str], weights: dict[str, float], max_chars: int) -> str:
    """The passage's best sentences by idf-weighted query-term overlap within max_chars (the first sentence when
    none overlaps); a passage already short enough stays whole."""
    if len(text) <= max_chars or not terms:
        return text[:max_chars] if not terms and len(text) > max_chars else text
    sentences = split_sentences(text)
    scored = []
    for i, s in enumerate(sentences):
        have = set(tokenize(s)) & terms
        scored.append((sum(weights.get(t, 1.0) for t in have), i))
    keep: set[int] = set()
    used = 0
    for score, i in sorted(scored, key=lambda x: (-x[0], x[1])):
        if score <= 0 and keep:
            break
        n = len(sentences[i])
        if used + n > max_chars and keep:
            continue
        keep.add(i)
        used += n
    return "".join(sentences[i] for i in sorted(keep))[:max_chars]


def shared_focus(terms: set[str], weights: dict[str, float], total: int, floor: int,
                 passages: int) -> Callable[[str], str]:
    """A focus for `passages` passages taken in rank order that share `total` characters: each may take what is
    left less `floor` for each passage after it, never under floor. A short passage leaves its share to the
    others, and the first ones, where the answer mostly is, take it (NCP dev: benchmarks/focus_recall.py)."""
    state = {"used": 0, "i": 0}

    def focus(text: str) -> str:
        chars = max(total - state["used"] - floor * (passages - 1 - state["i"]), floor)
        out = focus_text(text, terms, weights, chars)
        state["used"] += len(out)
        state["i"] += 1
        return out
    return focus
