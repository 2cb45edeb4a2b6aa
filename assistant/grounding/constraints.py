"""Question constraints: the specific place, agency, year, document or 文号 a question names. A passage that does
not mention them answers another entity's or year's question, however on-topic it is."""
from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.grounding.atoms import Atom, Evidence, extract_atoms

CONSTRAINT_KINDS = ("agency", "place", "document", "doc_number", "article", "date")
# places that name the whole country: every national policy applies, so they constrain nothing
_NATIONAL = frozenset("中国 中华人民共和国 全国 我国 国家".split())


@dataclass(frozen=True)
class Constraint:
    kind: str
    text: str           # as the question wrote it (named in the refusal)
    atom: Atom


def question_constraints(question: str) -> list[Constraint]:
    """The question's constraints, most specific first; a place inside a named agency is covered by the agency."""
    atoms = [a for a in extract_atoms(question) if a.kind in CONSTRAINT_KINDS]
    out: list[Constraint] = []
    agencies = [a.text for a in atoms if a.kind == "agency"]
    for a in sorted(atoms, key=lambda a: CONSTRAINT_KINDS.index(a.kind)):
        if a.kind == "place" and (a.text in _NATIONAL or any(a.text in ag for ag in agencies)):
            continue
        if a.kind == "date" and not re.fullmatch(r"date:\d{4}(-\d+){0,2}", a.key):
            continue
        out.append(Constraint(a.kind, re.sub(r"\s+", "", a.text), a))
    return out


def passage_evidence(text: str, meta: dict) -> Evidence:
    """A passage with what its document says of itself: title, 发文机关, 文号, 成文日期, law name."""
    head = " ".join(str(meta.get(k) or "") for k in ("title", "law", "agency", "doc_number", "date", "heading"))
    return Evidence.of(head, text)


def mentions(evidence: Evidence, c: Constraint) -> bool:
    """The passage names the constraint; a full date also by its month and day alone (news and notices write
    "1月5日0—24时" under a dated heading the chunk may not carry)."""
    if evidence.supports(c.atom):
        return True
    parts = c.atom.key.removeprefix("date:").split("-") if c.kind == "date" else []
    return len(parts) == 3 and f"{int(parts[1])}月{int(parts[2])}日" in evidence.text


def missing_constraints(constraints: list[Constraint], evidences: list[Evidence]) -> list[Constraint]:
    """The constraints no passage mentions."""
    return [c for c in constraints if not any(mentions(ev, c) for ev in evidences)]


def satisfies(constraints: list[Constraint], evidence: Evidence) -> bool:
    return all(mentions(evidence, c) for c in constraints)


def describe_missing(missing: list[Constraint]) -> str:
    return "".join(f"「{c.text}」" for c in missing)
