"""问答: streaming answers with a sources panel, knowledge-base selector, filters, multi-turn history, feedback
and copy/export; a source's 查看原文 opens its document at the passage (ui/source_view.py). Calls
container.qa.stream with the logged-in principal (ACL is enforced in the service)."""
from __future__ import annotations

import re
from typing import Any

import gradio as gr

from assistant.answering import Answer, citation_label
from assistant.filters import STATUSES, FilterError, Filters
from assistant.retrieval import query_terms
from ui.common import (Refresher, UIContext, can_read, download_file, esc, fail, friendly, highlight, kb_names,
                       notice, sensitivity_badge, service, status_badge)
from ui.session import note
from ui.source_view import build as build_source_view
from ui.source_view import positioned, source_link

SOURCE_VIEW = "chat-src"

EMPTY_SOURCES = ('<div class="src-empty">提问后，这里列出回答所依据的文件和条文：<br>'
                 '标题、文号或条款、发文机关、日期、效力状态和引用原文（命中的词语高亮显示）。</div>')
CITED_BADGE = '<span class="badge badge-cited">已引用</span>'
RELATED_BADGE = '<span class="badge badge-related">相关·未作为依据</span>'
EXAMPLES = ["开办餐饮店申请食品经营许可需要哪些材料？", "新生儿入户需要准备什么材料？",
            "公共数据开放共享的主要任务有哪些？"]
NO_EVIDENCE = ("知识库中没有找到可以作为依据的内容，因此没有生成回答。可以换一种问法，"
               "调整筛选条件（如效力状态、发文机关、日期），或选择其他知识库。")
# why a refusal was given (answer.verification["reason"]), in the words the panel shows
REFUSAL_REASONS = {
    "no_evidence": NO_EVIDENCE,
    "missing_constraint": "问题中提到的{missing}在知识库资料中没有出现，因此没有生成回答"
                          "（不用其他地区、机关、年份或文件的资料代替作答）。",
    "unanswerable": "检索到的资料与问题相关，但没有直接给出所问的内容，因此没有生成回答。",
    "unsupported": "生成的回答含有依据中没有的内容，已全部删除，因此没有给出回答。",
    "unanchored": "检索到的资料中与回答内容相关的段落没有提到问题中的{missing}，说的是别的事，因此没有把它作为回答。",
    "model_refused": "模型判断检索到的资料不足以回答该问题。",
    "missing_answer_kind": "问题询问具体的金额、期限、日期、比例、数量或电话，检索到的资料（或据此生成的回答）中没有给出，"
                           "因此没有生成回答。",
    "injection": "问题包含要求改变或泄露系统指令的内容，未予执行。",
}
RELATED_HEAD = "相关但未直接回答（仅供参考，未作为回答依据）"
_MARKERS = re.compile(r"\[\d{1,2}\]")


def _quoted(items) -> str:
    return "、".join(f"「{esc(x)}」" for x in dict.fromkeys(items))


def removed_sentences(verification: dict | None) -> list[dict]:
    return [s for s in (verification or {}).get("sentences") or [] if not s.get("supported", True)]


def verification_note(verification: dict | None) -> str:
    """"已删除 1 句：依据中未找到「10亿元」" (HTML-escaped), or "" when nothing was removed."""
    removed = removed_sentences(verification)
    if not removed:
        return ""
    atoms = [a for s in removed for a in s.get("unsupported") or []]
    wording = any("content" in (s.get("kinds") or []) for s in removed)
    return f"已删除 {len(removed)} 句" + (f"：依据中未找到{_quoted(atoms)}" if atoms else "") + \
        ("（其表述在依据中找不到）" if wording and not atoms else "")


def refusal_reason(verification: dict | None) -> str:
    """Why the answer was refused, the missing constraint named (HTML-escaped)."""
    v = verification or {}
    missing = v.get("missing_constraints") or []
    reason = "missing_constraint" if missing else (v.get("reason") or "no_evidence")   # no_evidence may name them
    if reason == "unanchored":     # the terms the closest sentence's passage lacks
        placed = [s for s in v.get("sentences") or [] if s.get("anchor") is not None]
        missing = max(placed, key=lambda s: s["anchor"]).get("unanchored_terms") or [] if placed else []
    text = REFUSAL_REASONS.get(reason, NO_EVIDENCE)
    return text.format(missing=_quoted(missing) if missing else "内容")


def render_verification(answer: Answer) -> str:
    """The removal note with the removed sentences struck through (muted), so the reader sees what was dropped."""
    v = answer.verification or {}
    note = verification_note(v)
    if not note:
        return ""
    rows = "".join(f'<li><del class="removed-sentence">{esc(_MARKERS.sub("", s.get("text", "")).strip())}</del>'
                   + (f'<span class="removed-why">未找到：{_quoted(s.get("unsupported") or [])}</span>'
                      if s.get("unsupported") else "") + "</li>"
                   for s in removed_sentences(v))
    return (f'<div class="verify-note" data-removed="{len(removed_sentences(v))}">'
            f'<div class="verify-head">⚠️ {note}</div><ul class="removed-list">{rows}</ul></div>')


def _card(c, terms: set[str], cited: bool, related: bool = False) -> str:
    m = c.metadata or {}
    title = m.get("title") or c.title or "（无标题）"
    meta_bits = [esc(b) for b in (m.get("agency"), m.get("date")) if b]
    meta_bits.append(f"知识库 {esc(c.kb)}")
    badge = RELATED_BADGE if related else (CITED_BADGE if c.cited else "")
    if not related and c.same_as:       # cited as a copy of the passage the answer marks
        badge = f'<span class="badge badge-cited" data-same-as="{c.same_as}">与[{c.same_as}]同文</span>'
    klass = "src-card related" if related else ("src-card" if cited else "src-card uncited")
    flag = ' data-related="true"' if related else ""
    number = "·" if related else f"[{c.n}]"
    link = source_link(SOURCE_VIEW, c.kb, c.doc_id, c.chunk_id) if positioned(m) and c.kb else ""
    return (f'<div class="{klass}" data-n="{c.n}"{flag}>'
            f'<div class="src-title"><span class="src-n">{number}</span>{esc(title)}'
            f'{status_badge(m.get("status", ""))}{sensitivity_badge(m.get("sensitivity"))}{badge}{link}</div>'
            + (f'<div class="src-label">{esc(source_label(m))}</div>' if source_label(m) else "")
            + f'<div class="src-meta">{" · ".join(meta_bits)}</div>'
            + (f'<div class="src-notice">⚠️ {esc(c.notice)}</div>' if c.notice else "")
            + (f'<div class="src-heading">{esc(section_of(m))}</div>' if section_of(m) else "")
            + f'<div class="src-text">{highlight(c.text, terms)}</div></div>')


def _timing_line(answer: Answer) -> str:
    t = answer.timings
    return (f"首字 {t.get('first_token_ms', 0) / 1000:.1f} 秒 · 总计 {t.get('total_ms', 0) / 1000:.1f} 秒 · "
            f"模型 {esc(answer.model)}")


def render_refusal(answer: Answer, query: str = "", standalone: str = "") -> str:
    """A refusal: why (the missing constraint named), what was removed, and the closest passages as
    "相关但未直接回答" cards — marked as such, never with the 已引用 badge."""
    parts = [notice(refusal_reason(answer.verification), "warn"), render_verification(answer)]
    if answer.related:
        terms = query_terms(standalone or query)
        parts.append(f'<div class="related-head">{RELATED_HEAD}</div>')
        parts += [_card(c, terms, cited=False, related=True) for c in answer.related]
    if answer.timings or answer.model:
        parts.append(f'<div class="src-query">{_timing_line(answer)}</div>')
    return '<div class="src-panel refusal">' + "".join(parts) + "</div>"


def render_sources(citations: list, query: str = "", standalone: str = "", answer: Answer | None = None,
                   status: str = "") -> str:
    """The sources panel (pure: HTML from its arguments). While streaming `status` ("检索到 n 条依据") heads it;
    with the finished `answer`, its timings, the verification note and, for a refusal, the related passages."""
    if answer is not None and answer.refused:
        return render_refusal(answer, query, standalone)
    if not citations:
        if status:
            return f'<div class="src-empty">{esc(status)}</div>'
        return EMPTY_SOURCES
    terms = query_terms(standalone or query)
    any_cited = any(c.cited for c in citations)
    parts = []
    head = [esc(status) if status and answer is None else
            f"共 {len(citations)} 条" + (f"，已引用 {sum(c.cited for c in citations)} 条" if any_cited else "")]
    if answer is not None:
        head.append(_timing_line(answer))
    parts.append(f'<div class="src-query">{" · ".join(head)}</div>')
    if standalone and standalone != query:
        parts.append(f'<div class="src-query">检索问题（结合上文改写）：{esc(standalone)}</div>')
    if answer is not None:
        parts.append(render_verification(answer))
    # cited passages first (numbers kept), so what the answer rests on is visible without scrolling
    for c in sorted(citations, key=lambda x: (any_cited and not x.cited, x.n)):
        parts.append(_card(c, terms, cited=c.cited or not any_cited))
    return '<div class="src-panel">' + "".join(parts) + "</div>"


def source_label(meta: dict) -> str:
    """《法名》第X条 for a law article, 文号 for a document that has one."""
    if meta.get("law") and meta.get("article"):
        return citation_label(meta)
    return f"文号：{meta['doc_number']}" if meta.get("doc_number") else ""


def section_of(meta: dict) -> str:
    """The passage's place in its document (章/节/条 or headings), without the repeated document title."""
    heading, title = meta.get("heading", ""), meta.get("title", "")
    for prefix in (f"《{title}》", title):
        if title and heading.startswith(prefix):
            heading = heading[len(prefix):]
            break
    return heading.strip(" >·")


def build_filters(statuses: list[str] | None, agency: str | None, date_from: str | None,
                  date_to: str | None, default: list[str] | None = None) -> Filters:
    """The form's filters; the statuses ticked as they start (`default`, retrieval.default_status) are the
    default validity, which also retrieves a law's newest text when that is 已被修改 (with its warning)."""
    data: dict[str, Any] = {"agency": (agency or "").strip() or None,
                            "date_from": (date_from or "").strip() or None,
                            "date_to": (date_to or "").strip() or None}
    statuses = [s for s in (statuses or []) if s]
    if not default or set(statuses) != set(default):
        data["status"] = statuses if statuses else ["*"]
    return Filters.from_dict(data)


def agencies(container, kbs: list[str], principal) -> list[str]:
    found: set[str] = set()
    for kb in kbs or []:
        try:
            for d in container.knowledge_bases.documents(kb, principal=principal):
                if d["metadata"].get("agency"):
                    found.add(d["metadata"]["agency"])
        except Exception:  # noqa: BLE001 - a vanished KB just contributes nothing
            continue
    return sorted(found)


def record_feedback(container, principal, answer: Answer, rating: str, comment: str, kbs: list[str]) -> None:
    """Stores the rating with the API's FeedbackService (container.feedback), with the answer's context."""
    svc = service(container, "feedback")
    if svc is None or not callable(getattr(svc, "add", None)):
        raise gr.Error("反馈功能未启用：本系统尚未配置反馈服务。", title="功能未启用")
    svc.add(answer.answer_id, rating, comment, principal=principal, question=answer.question, answer=answer.answer,
            model=answer.model, source_ids=[c.chunk_id for c in answer.citations], kbs=list(kbs))


def build(ctx: UIContext) -> None:
    c = ctx.container
    default_status = c.settings.retrieval.default_status
    last_answer = gr.State(None)   # the latest Answer (feedback, export)
    turns = gr.State([])           # plain-text history for condensing follow-ups

    with gr.Row(equal_height=False):
        with gr.Column(scale=7, min_width=560):
            with gr.Row():
                kb_select = gr.Dropdown(label="知识库", choices=[], multiselect=True, scale=3,
                                        info="只列出您有权阅读的知识库", elem_id="chat-kb")
                status_select = gr.CheckboxGroup(label="效力状态", choices=list(STATUSES),
                                                 value=list(default_status), scale=4, elem_id="chat-status",
                                                 info="默认还检索只有已被修改文本的法律的最新文本（附提示）")
            with gr.Accordion("更多筛选：发文机关、成文日期", open=False):
                with gr.Row():
                    agency = gr.Dropdown(label="发文机关", choices=[], allow_custom_value=True, scale=2,
                                         elem_id="chat-agency")
                    date_from = gr.Textbox(label="成文日期起", placeholder="如 2024-01-01", scale=1)
                    date_to = gr.Textbox(label="成文日期止", placeholder="如 2025-12-31", scale=1)
            chatbot = gr.Chatbot(label="对话", height=360, elem_id="chat-box", buttons=["copy"],
                                 feedback_options=None,
                                 examples=[{"text": q} for q in EXAMPLES],
                                 placeholder="**您好！** 请选择知识库后提问，回答会用 [n] 标注依据，"
                                             "右侧列出对应的文件和条文。知识库中没有依据时，系统会如实说明。")
            with gr.Row():
                question = gr.Textbox(show_label=False, placeholder="输入问题，回车发送；可以继续追问", scale=6,
                                      lines=1, max_lines=4, elem_id="chat-input", container=False)
                send = gr.Button("发送", variant="primary", scale=1, min_width=80, elem_id="chat-send")
                new_chat = gr.Button("新对话", scale=1, min_width=80, elem_id="chat-new")
            gr.Markdown("回答由人工智能根据知识库资料生成，仅供参考，请以正式发布的文件为准。", elem_classes="ai-note")
            with gr.Accordion("评价与导出（针对最近一次回答）", open=False, elem_id="chat-tools"):
                with gr.Row():
                    up = gr.Button("👍 有帮助", size="sm", min_width=90, elem_id="fb-up")
                    down = gr.Button("👎 没帮助", size="sm", min_width=90, elem_id="fb-down")
                    comment = gr.Textbox(show_label=False, placeholder="补充意见（可选），如：引用的条文不对",
                                         scale=4, container=False, elem_id="fb-comment")
                feedback_msg = gr.Markdown("", elem_id="fb-msg")
                export_text = gr.Textbox(label="回答全文（含依据和人工智能生成标识，可复制）", lines=4, max_lines=10,
                                         interactive=False, buttons=["copy"], elem_id="chat-export")
                download = gr.DownloadButton("下载回答（.txt）", value=None, size="sm", interactive=False,
                                             elem_id="chat-download")
        with gr.Column(scale=5, min_width=380):
            gr.Markdown("#### 参考依据")
            sources = gr.HTML(EMPTY_SOURCES, elem_id="chat-sources")
            source_view = build_source_view(ctx, SOURCE_VIEW)

    # -- handlers ------------------------------------------------------------------------------------------------
    def refresh_kbs(principal, current=None):
        names = kb_names(c, principal)
        keep = [k for k in (current or []) if k in names]
        value = keep or (names[:1] if names else [])
        return gr.update(choices=names, value=value)

    def on_kbs_change(principal, kbs):
        return gr.update(choices=[""] + agencies(c, [k for k in kbs or [] if can_read(principal, k)], principal))

    def ask(principal, message, history, hist_turns, kbs, statuses, agency_v, dfrom, dto):
        message = (message or "").strip()
        history = list(history or [])
        if not message:
            gr.Warning("请输入问题。")
            yield history, message, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        if not kbs:
            gr.Warning("请先选择至少一个知识库。")
            yield history, message, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        note(kb=list(kbs), question=message)
        try:
            filters = build_filters(statuses, agency_v, dfrom, dto, default_status)
            events = c.qa.stream(message, list(kbs), filters, list(hist_turns or []), principal=principal)
        except (FilterError, ValueError, PermissionError) as exc:
            raise fail(exc, "无法提问") from None
        history += [{"role": "user", "content": message}, {"role": "assistant", "content": "⏳ 正在检索知识库…"}]
        yield history, "", '<div class="src-empty">正在检索…</div>', gr.skip(), gr.skip(), gr.skip(), gr.skip()
        text, citations, standalone, answer = "", [], message, None
        try:
            for event in events:
                if event["type"] == "sources":
                    citations, standalone = event["citations"], event["standalone_question"]
                    status = event.get("status") or f"检索到 {len(citations)} 条依据"
                    history[-1]["content"] = f"⏳ {status}" + ("，正在生成回答…" if citations else "")
                    yield (history, "", render_sources(citations, message, standalone, status=status), gr.skip(),
                           gr.skip(), gr.skip(), gr.skip())
                elif event["type"] == "token":
                    text += event["text"]
                    history[-1]["content"] = text
                    yield history, "", gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
                elif event["type"] == "answer":
                    answer = event["answer"]
        except Exception as exc:  # noqa: BLE001 - the LLM backend can fail mid-stream; say so in the chat
            note(outcome="error")
            history[-1]["content"] = f"⚠️ 生成回答时出错：{friendly(exc)}"
            yield history, "", gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        if answer is None:
            note(outcome="error")
            history[-1]["content"] = "⚠️ 没有得到回答，请重试。"
            yield history, "", gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        # the audit row (written when this handler ends) records who asked: only they may rate the answer
        note(outcome="refused" if answer.refused else "ok", sources=[x.chunk_id for x in answer.citations],
             model=answer.model, answer_id=answer.answer_id)
        history[-1]["content"] = answer.answer
        new_turns = list(hist_turns or []) + [{"role": "user", "content": message},
                                              {"role": "assistant", "content": answer.answer}]
        export = answer.export_text()
        path = download_file(f"回答-{answer.answer_id[:8]}.txt", f"问题：{answer.question}\n\n{export}\n")
        yield (history, "", render_sources(answer.citations, message, standalone, answer), new_turns,
               {"answer": answer, "kbs": list(kbs)}, export, gr.update(value=path, interactive=True))

    def clear():
        return [], [], None, EMPTY_SOURCES, "", gr.update(value=None, interactive=False), "", ""

    def rate(principal, rating, last, text):
        if not last:
            raise gr.Error("还没有可以评价的回答。", title="无法评价")
        note(answer_id=last["answer"].answer_id, kb=last["kbs"])
        try:
            record_feedback(c, principal, last["answer"], rating, (text or "").strip(), last["kbs"])
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001
            raise fail(exc, "反馈提交失败") from None
        return f"已记录您的评价：{'👍 有帮助' if rating == 'up' else '👎 没帮助'}，谢谢！", ""

    def rate_up(principal, last, text):
        return rate(principal, "up", last, text)

    def rate_down(principal, last, text):
        return rate(principal, "down", last, text)

    inputs = [ctx.principal, question, chatbot, turns, kb_select, status_select, agency, date_from, date_to]
    outputs = [chatbot, question, sources, turns, last_answer, export_text, download]
    ctx.bind(send.click, ask, inputs, outputs, show_progress="hidden", **ctx.llm_queue)
    ctx.bind(question.submit, ask, inputs, outputs, show_progress="hidden", **ctx.llm_queue)
    new_chat.click(clear, None, [chatbot, turns, last_answer, sources, export_text, download, feedback_msg,
                                 source_view],
                   api_visibility="private")
    ctx.bind(up.click, rate_up, [ctx.principal, last_answer, comment], [feedback_msg, comment])
    ctx.bind(down.click, rate_down, [ctx.principal, last_answer, comment], [feedback_msg, comment])
    def pick_example(evt: gr.SelectData):
        return evt.value.get("text", "") if isinstance(evt.value, dict) else str(evt.value)

    chatbot.example_select(pick_example, None, [question], show_progress="hidden", api_visibility="private")
    ctx.bind(kb_select.change, on_kbs_change, [ctx.principal, kb_select], [agency], show_progress="hidden")

    ctx.on_login.append(Refresher(refresh_kbs, [kb_select]))
    ctx.on_kbs_changed.append(Refresher(refresh_kbs, [kb_select], [kb_select]))
