"""Answer verification: every sentence's factual atoms must occur in the passages it cites. A sentence with an
unsupported atom is removed; the report says which atoms were missing, per sentence, machine-readably."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from assistant.grounding.atoms import (Evidence, atom_spans, extract_atoms, has_figure, normalize, unsupported_atoms,
                                      year_mismatches)
from assistant.text_heuristics import add_marker, other_names

CITE = re.compile(r"\[(\d{1,2})\]")
# a sentence ends at 。！？ or a line break; the [n] markers right after the end belong to it
_SENTENCE = re.compile(r"[^。！？!?\n]*(?:[。！？!?]+|\n|$)(?:\s*\[\d{1,2}\])*[ \t]*\n?")


@dataclass
class SentenceCheck:
    text: str
    cites: list[int]
    supported: bool
    unsupported: list[str] = field(default_factory=list)     # the atoms as written
    kinds: list[str] = field(default_factory=list)
    added_cites: list[int] = field(default_factory=list)     # markers added: the passage that states its atoms
    # share of the sentence's own wording (what it does not repeat from the question) found in its passages
    # (None: no wording of its own); judged only from MIN_OWN_GRAMS bigrams of its own (`own`) up
    support: float | None = None
    own: int = 0
    # share of the question's terms where its own content sits in a passage (anchor); None: not judged
    anchor: float | None = None
    unanchored_terms: list[str] = field(default_factory=list)   # the question's terms that place lacks


@dataclass
class Verification:
    sentences: list[SentenceCheck] = field(default_factory=list)
    answerability: float | None = None       # P(the passages answer the question), when judged
    signals: dict[str, float] = field(default_factory=dict)   # what the answerability scorer read
    missing_constraints: list[str] = field(default_factory=list)
    reason: str = ""                         # why the answer was refused, when it was
    extract: dict | None = None              # the passage sentence quoted instead (grounding/extractive.py)

    @property
    def removed(self) -> int:
        return sum(not s.supported for s in self.sentences)

    @property
    def unsupported_atoms(self) -> list[str]:
        return [a for s in self.sentences for a in s.unsupported]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["removed"] = self.removed
        return d


def split_sentences(text: str) -> list[str]:
    return [m.group(0) for m in _SENTENCE.finditer(text) if m.group(0).strip()]


def check_sentence(sentence: str, evidences: dict[int, Evidence], all_evidence: Evidence, question: str = "",
                   min_support: float = 0.0) -> SentenceCheck:
    """Atoms of the sentence against the passages it cites (all passages when it cites none). Small models often
    cite the wrong neighbour: when one other passage states every atom the cited ones lack, its marker is added
    (`added_cites`) and the sentence stands on it. With `min_support`, a sentence whose own wording is mostly not
    in its passages ("通过设置检查站严格检查车辆" from a passage about something else) is unsupported too: an
    invented answer need not contain a figure."""
    cites = [int(n) for n in CITE.findall(sentence) if int(n) in evidences]
    ev = union([evidences[n] for n in cites]) if cites else all_evidence
    body = CITE.sub("", sentence)
    missing = unsupported_atoms(body, ev)
    if missing and question:     # what the user stated (2022年1月5日, 深圳市) is repeated, not invented
        asked = Evidence.of(question)
        missing = [a for a in missing if not asked.supports(a)]
    added: list[int] = []
    if missing and cites:
        fix = next((n for n in sorted(evidences) if n not in cites
                    and all(evidences[n].supports(a) for a in missing)
                    and _overlap(body, missing, evidences[n].text) >= 0.3), None)
        if fix is not None:
            sentence, cites, missing, added = add_marker(sentence, fix), cites + [fix], [], [fix]
            ev = union([evidences[n] for n in cites])
    own = len(own_grams(body, question))
    support = content_support(body, ev.text, question)
    if support is not None and support < 1.0 and cites:
        # the wording may be another passage's (the wrong neighbour cited, again): the best one counts, and gets
        # the marker when the sentence needs it to pass
        other, n = max(((content_support(body, evidences[n].text, question) or 0.0, n) for n in sorted(evidences)
                        if n not in cites), default=(0.0, None))
        if other > support:
            if support < min_support <= other:
                sentence, cites, added = add_marker(sentence, n), cites + [n], added + [n]
            support = other
    unsupported, kinds = [a.text for a in missing], [a.kind for a in missing]
    # a figure every passage states for another year than the sentence does (any passage: the right neighbour may
    # be uncited) is not supported for that year
    if not missing and (wrong_year := year_mismatches(body, all_evidence.text)):
        unsupported, kinds = unsupported + wrong_year, kinds + ["year"] * len(wrong_year)
    if own >= MIN_OWN_GRAMS and support < min_support:
        kinds.append("content")
    return SentenceCheck(sentence, cites, not kinds, unsupported, kinds, added_cites=added, support=support, own=own)


def substantive(check: SentenceCheck, min_support: float) -> bool:
    """A kept sentence that says something of its own the passages hold (or a figure they state), as opposed
    to a restatement of the question ("北京市的做法如下：")."""
    if has_figure(CITE.sub("", check.text)):
        return True
    if check.support is None:              # nothing of its own: a restatement
        return False
    # a short sentence's share is noisy ("是一部喜剧电影" against "喜剧片"): any of its own words in a passage counts
    return check.support >= min_support if check.own >= MIN_OWN_GRAMS else check.support > 0


MIN_OWN_GRAMS = 6      # fewer character bigrams of its own: a sentence too short to judge by wording
# answer boilerplate and connectives that no passage needs to share
_ANSWER_WORDS = ("根据|参考|资料|信息|中的|规定|需要|可以|应当|要求|相关|以下|如下|包括|其中|办法|进行|通过|主要|内容|"
                 "具体|方面|有关|按照|问题|回答|答案|提到|指出|表示|显示|可知|所述|明确|文件|通知|政策|措施")


def _grams(text: str) -> set[str]:
    t = re.sub(r"[\W\d_a-zA-Z]|" + _ANSWER_WORDS, "|", normalize(text))
    return {t[i:i + 2] for i in range(len(t) - 1) if "|" not in t[i:i + 2]}


def own_grams(body: str, question: str = "") -> set[str]:
    """The sentence's own character bigrams: not in the question, not boilerplate; figures and Latin are left to
    the atom check."""
    return _grams(body) - _grams(question)


def content_support(body: str, passage: str, question: str = "") -> float | None:
    """Share of the sentence's own bigrams that occur in the passage text (None: it has none)."""
    own = own_grams(body, question)
    if not own:
        return None
    text = normalize(passage)
    return round(sum(g in text for g in own) / len(own), 3)


# answer boilerplate that no passage needs to share ("根据资料中的规定，…需要…")
_FILLER = "根据|资料|中的|规定|需要|可以|应当|要求|相关|以下|如下|包括|其中|办法"


def _overlap(body: str, atoms, passage: str) -> float:
    """Share of the sentence's character bigrams (its atoms left out) found in the passage: the passage has to
    say what the sentence says around the figure, not only hold the figure."""
    rest = normalize(body)
    for a in atoms:
        rest = rest.replace(normalize(a.text), "|")
    rest = re.sub(r"[，。、；：！？,.;:!?\s]|" + _FILLER, "|", rest)
    grams = {rest[i:i + 2] for i in range(len(rest) - 1) if "|" not in rest[i:i + 2]}
    return sum(g in passage for g in grams) / len(grams) if grams else 0.0


def union(evs: list[Evidence]) -> Evidence:
    """One Evidence of several passages."""
    if len(evs) == 1:
        return evs[0]
    return Evidence("\n".join(e.text for e in evs), frozenset().union(*(e.keys for e in evs)))


def verify_text(text: str, evidences: dict[int, Evidence]) -> tuple[str, list[SentenceCheck]]:
    """(the text with unsupported sentences removed, the check of every sentence)."""
    all_ev = union(list(evidences.values()))
    checks = [check_sentence(s, evidences, all_ev) for s in split_sentences(text)]
    kept = "".join(c.text for c in checks if c.supported)
    return kept.strip(), checks


_DOC_NAME = re.compile(r"《[^《》]{1,60}》")
_BOILERPLATE = re.compile(_ANSWER_WORDS)


def own_words(body: str, question: str) -> set[str]:
    """The sentence's own words (jieba, lower case): not the question's, not answer boilerplate, no single characters
    or bare numbers (figures are placed as atoms), document names 《…》 left out ("根据《检索结果》" cites, it says
    nothing)."""
    from assistant.components.store.tokens import tokenize

    asked = set(tokenize(question))
    return {w for w in tokenize(_DOC_NAME.sub("", CITE.sub("", body)))
            if len(w) > 1 and w not in asked and not w.isdigit() and not _BOILERPLATE.fullmatch(w)}


def main_terms(terms: set[str]) -> set[str]:
    """The question's terms without those inside a longer one (人世间, not also 人世 and 世间: a term's parts would
    count it several times), years (the question's year is a constraint every passage was already held to) and the
    names of the whole country (a national passage rarely says 中国)."""
    return {t for t in terms if not any(t != u and t in u for u in terms) and not t.isdigit()
            and t not in _COUNTRY}


_COUNTRY = frozenset("中国 我国 全国 国家 中华人民共和国".split())


@dataclass(frozen=True)
class AnchorQuestion:
    """What anchoring reads of the question, read once per answer: the terms a place must hold and what it states."""
    text: str
    terms: frozenset[str]
    stated: Evidence          # a figure the question states places nothing

    @classmethod
    def of(cls, question: str, terms: set[str]) -> "AnchorQuestion":
        from assistant.grounding.answer_type import asked_span

        # places and agencies the question names were required of every passage already (constraints); the words
        # that ask ("日期是什么时候") are answered by the figure, not found beside it
        named = [a.text for a in extract_atoms(question) if a.kind in ("place", "agency")] + [asked_span(question)]
        kept = {normalize(t).lower() for t in main_terms(terms) if not any(t in n for n in named if n)}
        return cls(question, frozenset(kept), Evidence.of(question))


class AnchorPassage:
    """A passage as anchoring reads it: title and heading (what the whole passage is about) and its sentences, each
    normalized; the atom keys of a sentence are read when a figure is first looked for in it."""

    def __init__(self, text: str, head: str = ""):
        self.head = _with_other_names(normalize(head).lower())
        self.raw = tuple(s for s in _CLAUSE.split(text) if s.strip())     # as written, for quoting
        self.sentences = tuple(normalize(s) for s in self.raw)
        self.lower = tuple(_with_other_names(s.lower()) for s in self.sentences)
        self._keys: dict[int, frozenset[str]] = {}

    def missing(self, i: int, terms: frozenset[str]) -> list[str]:
        """The question's terms that sentence i's place lacks: the sentence, the one before it, title and heading."""
        place = self.head + (self.lower[i - 1] if i else "") + self.lower[i]
        return sorted(t for t in terms if t not in place)

    def keys(self, i: int) -> frozenset[str]:
        if i not in self._keys:
            self._keys[i] = Evidence.of(self.sentences[i]).keys
        return self._keys[i]


_CLAUSE = re.compile(r"(?<=[。！？!?；;\n])")


def _with_other_names(text: str) -> str:
    """The text and, after it, the other names of the organs it names: a question's 工信部 is found where the passage
    writes 工业和信息化部 (a separator keeps the names from joining the text into new words)."""
    others = other_names(text)
    return text + "".join("\x1f" + n for n in others) if others else text


def anchor(body: str, question: AnchorQuestion, passages: list[AnchorPassage]) -> tuple[float | None, list[str]]:
    """Does the sentence answer *this* question, or copy a passage sentence about something next to it? Where its own
    content sits in the passages (a passage sentence holding one of its own words, or one of its figures by value),
    the best share of the question's terms that place covers with the sentence before it and the passage's title and
    heading; and the terms missing there. "2021年中国电影市场总票房为11.67亿" from "2021年，城市观影人次为11.67亿"
    covers none of 电影 / 市场 / 票房. (None, []): nothing of its own to place, or no terms."""
    terms = question.terms
    own = own_words(body, question.text)
    figures = {a.key for a, _ in atom_spans(body, names=False) if a.is_figure and not question.stated.supports(a)}
    if not terms or (not own and not figures):
        return None, []
    best, lacking = -1.0, sorted(terms)
    for p in passages:
        for i, low in enumerate(p.lower):
            if not (any(w in low for w in own) or (figures and figures & p.keys(i))):
                continue
            missing = p.missing(i, terms)
            share = 1 - len(missing) / len(terms)
            if share > best:
                best, lacking = share, missing
    return (round(best, 3), lacking) if best >= 0 else (0.0, lacking)


def anchored(check: SentenceCheck, min_anchor: float, tolerated: int = 1) -> bool:
    """The sentence counts as the answer: nothing of its own to place, a place holding min_anchor of the question's
    terms, or one lacking no more than `tolerated` of them."""
    return check.anchor is None or check.anchor >= min_anchor or len(check.unanchored_terms) <= tolerated


def has_content(text: str) -> bool:
    """Something besides markers, punctuation and an opening phrase ("根据资料，") is left."""
    body = re.sub(r"\[\d{1,2}\]|[\s。，,.：:；;！？]", "", CITE.sub("", text))
    return len(body) >= 4


PLACEHOLDER = "〔待补充〕"
_DRAFT_KINDS = frozenset({"amount", "percent", "number", "date", "doc_number", "article"})


def mark_unsupported(text: str, evidences: dict[int, Evidence], given: Evidence) -> tuple[str, list[SentenceCheck]]:
    """For drafts: a figure, date, 文号 or 条款 that neither the cited passages nor what the user gave (topic,
    requirements, issuer) state becomes 〔待补充〕 — the draft keeps its structure and says what to fill in."""
    all_ev = Evidence("\n".join([given.text, *(e.text for e in evidences.values())]),
                      given.keys.union(*(e.keys for e in evidences.values())))
    out, checks = [], []
    for sentence in split_sentences(text):
        cites = [int(n) for n in CITE.findall(sentence) if int(n) in evidences]
        ev = all_ev if not cites else Evidence(
            "\n".join([given.text, *(evidences[n].text for n in cites)]),
            given.keys.union(*(evidences[n].keys for n in cites)))
        missing = [a for a in unsupported_atoms(CITE.sub("", sentence), ev) if a.kind in _DRAFT_KINDS]
        for a in missing:
            sentence = sentence.replace(a.text, PLACEHOLDER)
        checks.append(SentenceCheck(sentence, cites, not missing, [a.text for a in missing], [a.kind for a in missing]))
        out.append(sentence)
    return "".join(out), checks
