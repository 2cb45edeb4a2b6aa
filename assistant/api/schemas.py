"""Request and response bodies of the /api/v1 routes. Requests forbid unknown fields, so a typo is a 422 that
names the field instead of being silently ignored; lengths are bounded so no request can ask for unbounded work."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from assistant.components.store.catalog import KB_NAME

KbName = Annotated[str, StringConstraints(pattern=KB_NAME.pattern)]
MAX_FILTER_VALUES = 100      # doc_ids etc.: the vector store turns each into an SQL variable (32,766 at most)
MAX_FILTER_CHARS = 300


def _bounded_filter(value: str | list[str]) -> str | list[str]:
    values = [value] if isinstance(value, str) else value
    if len(values) > MAX_FILTER_VALUES:
        raise ValueError(f"at most {MAX_FILTER_VALUES} values (got {len(values)})")
    if any(len(v) > MAX_FILTER_CHARS for v in values):
        raise ValueError(f"a value is longer than {MAX_FILTER_CHARS} characters")
    return value


FilterValue = Annotated[str | list[str], AfterValidator(_bounded_filter)]
FilterKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
FiltersIn = dict[FilterKey, FilterValue]   # also for the OpenAI route's `filters` extension


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KbSelection(Strict):
    kb_required: ClassVar[bool] = True
    kb: KbName | None = Field(None, description="One knowledge base.")
    kbs: list[KbName] | None = Field(None, max_length=20, description="Several knowledge bases.")

    @model_validator(mode="after")
    def _one_given(self) -> "KbSelection":
        if self.kb_required and not self.kb and not self.kbs:
            raise ValueError("give the knowledge base: 'kb' or 'kbs'")
        return self

    def selected_kbs(self) -> list[str]:
        return list(dict.fromkeys(([self.kb] if self.kb else []) + list(self.kbs or [])))


class Turn(Strict):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=4000)


class AskRequest(KbSelection):
    question: str = Field(min_length=1, max_length=2000, examples=["新生儿落户需要哪些材料？"])
    filters: FiltersIn | None = Field(
        None, max_length=20, description="status (default 现行有效; '*' for any), agency, doc_type, date_from, "
                                         "date_to, doc_ids, or any exact metadata field such as law; at most "
                                         f"{MAX_FILTER_VALUES} values per field.")
    history: list[Turn] | None = Field(None, max_length=20, description="Earlier turns, oldest first.")


class SearchRequest(KbSelection):
    query: str = Field(min_length=1, max_length=2000)
    filters: FiltersIn | None = Field(None, max_length=20)
    top_k: int = Field(5, ge=1, le=50)
    mode: Literal["hybrid", "bm25", "dense"] = "hybrid"


class CitationOut(BaseModel):
    n: int
    doc_id: str
    chunk_id: str
    kb: str
    title: str
    label: str = Field(description="《法名》第X条 or 《标题》（文号）")
    text: str
    metadata: dict[str, Any]
    cited: bool = Field(description="The answer cites it as [n].")
    offsets: list[int] | None = Field(None, description="[start, end] of the passage in the document's extracted "
                                                      "text (GET …/documents/{doc_id}/text); null when not known.")
    pages: list[int] = Field(default_factory=list, description="The pages it is on (PDF, OFD, scans); [] otherwise.")
    page: int | None = Field(None, description="Its first page, or null.")
    sensitivity: str | None = Field(None, description="The cited document's level (数据分类分级), e.g. 内部.")
    notice: str | None = Field(None, description="A warning to show with it: an 已被修改 text reads "
                                                 "此文本此后已被修改，请以最新修正文本为准 (null otherwise).")
    same_as: int | None = Field(None, description="Cited as the same text as passage [same_as], which the answer "
                                                  "cites (a repost or another copy of it); null otherwise.")
    related: bool = Field(False, description="A refusal's closest passage (相关但未直接回答): shown for reference, "
                                             "never the answer's evidence. Items of `related` are true, of "
                                             "`citations` false.")


class SentenceCheckOut(BaseModel):
    text: str = Field(description="The sentence as the model wrote it, [n] markers included.")
    cites: list[int] = Field(description="The passages it cites (checked against those; all passages when none).")
    supported: bool = Field(description="Every figure, date, 文号, 条款 and name in it is in the cited passages; "
                                        "an unsupported sentence is removed from the answer.")
    unsupported: list[str] = Field(default_factory=list, description="The atoms the passages lack, as written, "
                                                                     "e.g. [\"10亿元\"].")
    kinds: list[str] = Field(default_factory=list, description="Their kinds: amount, percent, date, number, "
                                                               "doc_number, article, document, place, agency; "
                                                               "content when its wording is not in its passages.")
    support: float | None = Field(None, description="Share of the sentence's own wording (not repeated from the "
                                                    "question) found in its passages; null: none of its own.")
    own: int = Field(0, description="How many character bigrams of its own it has (judged by wording from 6 up).")
    added_cites: list[int] = Field(default_factory=list, description="Markers added: the passage that states it.")


class ExtractOut(BaseModel):
    n: int = Field(description="The passage quoted (its citation number).")
    sentence: str = Field(description="The passage's words that went out instead of the model's.")
    coverage: float = Field(description="kind: share of the question's idf weight in it and its heading; anchor: "
                                        "share of the question's terms its place holds.")
    rule: str = Field("kind", description="kind: a typed question (多久, 多少钱 …) and the sentence stating it; anchor: "
                                          "the clause placed with the question's terms.")


class VerificationOut(BaseModel):
    sentences: list[SentenceCheckOut] = Field(default_factory=list, description="Every generated sentence's check.")
    answerability: float | None = Field(None, description="P(the passages answer the question), when judged.")
    missing_constraints: list[str] = Field(
        default_factory=list, description="What the question names (place, agency, year, document) that no passage "
                                          "mentions, e.g. [\"深圳市政务服务数据管理局\", \"2024年\"].")
    reason: str = Field("", description="Why the answer was refused: '' (answered), no_evidence, missing_constraint, "
                                        "unanswerable, unsupported (every sentence failed verification) or "
                                        "model_refused.")
    removed: int = Field(0, description="Sentences removed because the passages do not support them.")
    extract: ExtractOut | None = Field(None, description="Set when the answer is a passage quoted (依据原文摘录) "
                                                         "because every generated sentence was removed or none "
                                                         "stood where its passage speaks of the question.")


class AskResponse(BaseModel):
    question: str
    answer: str
    refused: bool = Field(description="No (supporting) evidence in the knowledge base: the answer is the refusal "
                                      "line; verification.reason says why.")
    citations: list[CitationOut] = Field(description="The passages the answer rests on; [] when refused.")
    related: list[CitationOut] = Field(default_factory=list, description=(
        "A refusal's closest passages (相关但未直接回答, each marked related: true): for reference only, never "
        "cited as the answer."))
    verification: VerificationOut = Field(default_factory=VerificationOut,
                                          description="How the answer was checked against the passages.")
    standalone_question: str
    timings: dict[str, float]
    usage: dict[str, int]
    model: str
    answer_id: str = Field(description="For POST /api/v1/feedback.")
    ai_generated: bool = Field(description="人工智能生成合成内容标识 (always true for generated answers).")


class HitOut(BaseModel):
    doc_id: str
    chunk_id: str
    kb: str
    title: str
    text: str
    score: float
    metadata: dict[str, Any]
    scores: dict[str, Any]
    offsets: list[int] | None = Field(None, description="[start, end] of the passage in the document's extracted "
                                                      "text (GET …/documents/{doc_id}/text); null when not known.")
    pages: list[int] = Field(default_factory=list, description="The pages it is on (PDF, OFD, scans); [] otherwise.")
    page: int | None = Field(None, description="Its first page, or null.")


class SearchResponse(BaseModel):
    hits: list[HitOut]
    timings: dict[str, float]


class KbCreate(Strict):
    name: KbName = Field(description="Letters, digits, '-' or '_' (the Chinese name goes in the description).")
    description: str = Field("", max_length=500)


class JobAccepted(BaseModel):
    job_id: str
    status_url: str
    kb: str
    files: list[str] = []


class GuideRequest(KbSelection):
    request: str = Field(min_length=1, max_length=500, examples=["我要开办餐饮店"])


class DraftRequest(KbSelection):
    kb_required: ClassVar[bool] = False   # a 会议纪要 can be drafted from notes in `requirements` alone
    doc_type: str = Field(min_length=1, max_length=20, description="通知 / 请示 / 报告 / 函 / 会议纪要")
    topic: str = Field(min_length=1, max_length=200)
    requirements: str = Field("", max_length=2000)
    doc_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = Field(None, max_length=50)
    issuer: str = Field("", max_length=200)
    recipients: str = Field("", max_length=200)
    date: str | None = Field(None, max_length=20, description="成文日期, e.g. 2025-03-18 (default today)")


class PolishRequest(Strict):
    text: str = Field(min_length=1, max_length=6000)
    instruction: str = Field("", max_length=500)


class ExtractRequest(Strict):
    text: str = Field(min_length=1, max_length=20000)


class FeedbackRequest(Strict):
    answer_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    rating: Literal["up", "down"]
    comment: str = Field("", max_length=2000)


def answer_payload(answer: Any) -> dict:
    """An Answer as the response body: its dict with each related passage marked `related: true`."""
    d = answer.to_dict()
    for c in d.get("citations") or []:
        c["related"] = False
    for c in d.get("related") or []:
        c["related"] = True
        c["cited"] = False
    return d
