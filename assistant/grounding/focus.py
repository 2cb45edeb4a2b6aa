"""Focused context: each passage cut to the sentences that share the question's terms, in their original order.
Shorter prompts prefill faster on CPU and leave the small model less unrelated text to copy."""
from __future__ import annotations

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
