"""公文写作: draft 通知/请示/报告/函/会议纪要 grounded in chosen knowledge-base documents (GB/T 9704 element order),
polish a pasted text, extract action items (事项 / 责任单位 / 完成时限) into a table. Over container.drafting."""
from __future__ import annotations

import csv
import datetime as dt
import io

import gradio as gr

from ui.common import (Refresher, UIContext, can_read, disabled_notice, download_file, esc, fail, kb_names, notice,
                       service)
from ui.session import note

DOC_TYPES = ["通知", "请示", "报告", "函", "会议纪要"]
ACTION_HEADERS = ["事项", "责任单位", "完成时限"]
EMPTY_DRAFT = notice("填写左侧要素后点“生成草稿”。正文由模型依据所选知识库文件起草并用 [n] 标注出处，"
                     "标题、主送机关、落款和成文日期按 GB/T 9704 要素顺序排列。")


def _meta_bits(m: dict) -> list[str]:
    return [str(b) for b in (m.get("agency"), m.get("date"), m.get("status")) if b]


def render_draft_sources(citations: list[dict]) -> str:
    if not citations:
        return notice("本次草稿没有使用知识库资料（未选择知识库，或知识库中没有相关内容）；"
                      "需要补充的事实已用〔待补充〕标出。", "warn")
    rows = []
    for c in citations:
        m = c.get("metadata") or {}
        mark = "已引用" if c.get("cited") else "未引用"
        rows.append(f"<div class='src-card{'' if c.get('cited') else ' uncited'}'><div class='src-title'>"
                    f"<span class='src-n'>[{c['n']}]</span>{esc(c.get('label') or c.get('title'))}"
                    f"<span class='badge {'badge-cited' if c.get('cited') else 'badge-warn'}'>{mark}</span></div>"
                    f"<div class='src-meta'>{esc(' · '.join(_meta_bits(m)))}"
                    f"</div><div class='src-text'>{esc((c.get('text') or '')[:160])}…</div></div>")
    return "<div class='src-panel' style='max-height:260px'>" + "".join(rows) + "</div>"


def build(ctx: UIContext) -> None:
    c = ctx.container
    if service(c, "drafting") is None:
        gr.HTML(disabled_notice("公文写作", "需要 container.drafting（起草、润色、提取任务）。"), elem_id="draft-disabled")
        return

    with gr.Tabs(elem_id="draft-tabs"):
        with gr.Tab("起草公文", id="draft"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=5, min_width=420):
                    doc_type = gr.Radio(DOC_TYPES, value="通知", label="文种", elem_id="draft-type")
                    topic = gr.Textbox(label="事由 / 标题要点", placeholder="如：开展2025年度公共数据开放共享工作",
                                       elem_id="draft-topic")
                    requirements = gr.Textbox(label="起草要求（可选）", lines=3, max_lines=8, elem_id="draft-req",
                                              placeholder="如：明确工作目标、主要任务和时间安排；会议纪要可在此粘贴会议记录")
                    with gr.Row():
                        recipients = gr.Textbox(label="主送机关", placeholder="如：各区人民政府，市政府各委、办、局",
                                                scale=3)
                        issuer = gr.Textbox(label="发文机关（落款）", placeholder="如：示范市人民政府办公厅", scale=2)
                        date = gr.Textbox(label="成文日期", value=lambda: dt.date.today().isoformat(), scale=1,
                                          min_width=130)
                    with gr.Row():
                        kbs = gr.Dropdown(label="参考知识库", choices=[], multiselect=True, scale=2,
                                          elem_id="draft-kbs")
                        docs = gr.Dropdown(label="限定参考文件（可选）", choices=[], multiselect=True, scale=3,
                                           elem_id="draft-docs")
                    run = gr.Button("生成草稿", variant="primary", elem_id="draft-run")
                with gr.Column(scale=7, min_width=520):
                    output = gr.Textbox(label="草稿（可直接编辑、复制）", lines=16, max_lines=30, buttons=["copy"],
                                        interactive=True, elem_id="draft-output")
                    with gr.Row():
                        draft_dl = gr.DownloadButton("下载草稿（.txt）", size="sm", interactive=False,
                                                     elem_id="draft-download")
                        draft_info = gr.Markdown("", elem_id="draft-info")
                    draft_sources = gr.HTML(EMPTY_DRAFT, elem_id="draft-sources")
        with gr.Tab("润色改写", id="polish"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=1):
                    polish_in = gr.Textbox(label="原文", lines=14, max_lines=30, elem_id="polish-input",
                                           placeholder="粘贴需要润色的文字（不超过 6000 字）。数字、日期不会被改动。")
                    instruction = gr.Textbox(label="润色要求（可选）", placeholder="如：更加简洁、符合公文语体",
                                             elem_id="polish-instruction")
                    polish_btn = gr.Button("润色", variant="primary", elem_id="polish-run")
                with gr.Column(scale=1):
                    polish_out = gr.Textbox(label="润色结果", lines=14, max_lines=30, buttons=["copy"],
                                            interactive=False, elem_id="polish-output")
                    polish_msg = gr.HTML("", elem_id="polish-msg")
        with gr.Tab("提取任务清单", id="actions"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=5):
                    actions_in = gr.Textbox(label="公文全文", lines=11, max_lines=30, elem_id="actions-input",
                                            placeholder="粘贴通知、方案或会议纪要全文，提取“事项 / 责任单位 / 完成时限”。")
                    actions_file = gr.File(label="或上传文件（.txt .md .docx .pdf）", file_count="single",
                                           file_types=[".txt", ".md", ".docx", ".pdf", ".html"], height=130)
                    actions_btn = gr.Button("提取", variant="primary", elem_id="actions-run")
                with gr.Column(scale=7):
                    actions_table = gr.Dataframe(headers=ACTION_HEADERS, value=[], interactive=False, wrap=True,
                                                 max_height=380, elem_id="actions-table",
                                                 column_widths=["50%", "30%", "20%"])
                    with gr.Row():
                        actions_dl = gr.DownloadButton("下载表格（.csv）", size="sm", interactive=False,
                                                       elem_id="actions-download")
                    actions_msg = gr.HTML("", elem_id="actions-msg")

    svc = c.drafting

    def refresh_kbs(principal, current=None):
        names = kb_names(c, principal)
        return gr.update(choices=names, value=[k for k in (current or []) if k in names])

    def on_kbs(principal, selected):
        note(kb=list(selected or []))
        choices = []
        for kb in selected or []:
            if not can_read(principal, kb):
                continue
            try:
                for d in c.knowledge_bases.documents(kb, principal=principal):
                    if d.get("state") == "complete":
                        choices.append((f"{(d.get('title') or d['doc_id'])[:36]}（{kb}）", d["doc_id"]))
            except Exception:  # noqa: BLE001
                continue
        return gr.update(choices=choices, value=[])

    def draft(principal, dtype, topic_v, req, recip, iss, date_v, kbs_v, docs_v):
        note(kb=list(kbs_v or []), question=topic_v)
        if not (topic_v or "").strip():
            raise gr.Error("请填写事由 / 标题要点。", title="无法起草")
        try:
            result = svc.draft(dtype, topic_v, list(kbs_v or []), principal=principal, requirements=req or "",
                               doc_ids=list(docs_v or []) or None, issuer=iss or "", recipients=recip or "",
                               date=(date_v or "").strip() or None)
        except Exception as exc:  # noqa: BLE001
            raise fail(exc, "起草失败") from None
        note(sources=[x.get("chunk_id") for x in result.get("citations", [])])
        text = result.get("text", "")
        t = result.get("timings", {})
        info = f"{esc(result.get('doc_type', dtype))} · 用时 {t.get('total_ms', 0) / 1000:.1f} 秒 · 人工智能生成，请核改后使用"
        path = download_file(f"{result.get('title', '草稿')[:40]}.txt", text)
        return text, gr.update(value=path, interactive=True), info, render_draft_sources(result.get("citations", []))

    def polish(principal, text, instr):
        if not (text or "").strip():
            raise gr.Error("请粘贴需要润色的文字。", title="无法润色")
        try:
            result = svc.polish(text, instr or "")
        except Exception as exc:  # noqa: BLE001
            raise fail(exc, "润色失败") from None
        warnings = result.get("warnings") or []
        msg = (notice("<br>".join(esc(w) for w in warnings), "warn") if warnings
               else notice("润色完成（人工智能生成，请核对后使用）。", "ok"))
        return result.get("text", ""), msg

    def extract_actions(principal, text, file):
        if file and not (text or "").strip():
            from ui.pages.summarize import read_upload
            try:
                text = read_upload(file)
            except Exception as exc:  # noqa: BLE001
                raise fail(exc, "读取文件失败") from None
        if not (text or "").strip():
            raise gr.Error("请粘贴公文全文或上传文件。", title="无法提取")
        try:
            result = svc.extract_actions(text)
        except Exception as exc:  # noqa: BLE001
            raise fail(exc, "提取失败") from None
        rows = [[r.get("事项", ""), r.get("责任单位", ""), r.get("完成时限", "")] for r in result.get("rows", [])]
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(ACTION_HEADERS)
        w.writerows(rows)
        path = download_file("任务清单.csv", buf.getvalue(), encoding="utf-8-sig")   # BOM: Excel reads UTF-8
        warnings = result.get("warnings") or []
        msg = notice(f"共提取 {len(rows)} 项任务。" + "".join(f"<br>{esc(w)}" for w in warnings),
                     "ok" if rows and not warnings else "warn") if rows else notice(
            "没有找到明确的任务（需要有责任单位的事项）。", "warn")
        return rows, gr.update(value=path, interactive=bool(rows)), msg

    ctx.bind(kbs.change, on_kbs, [ctx.principal, kbs], [docs], show_progress="hidden")
    ctx.bind(run.click, draft, [ctx.principal, doc_type, topic, requirements, recipients, issuer, date, kbs, docs],
             [output, draft_dl, draft_info, draft_sources], **ctx.llm_queue)
    ctx.bind(polish_btn.click, polish, [ctx.principal, polish_in, instruction], [polish_out, polish_msg],
             **ctx.llm_queue)
    ctx.bind(actions_btn.click, extract_actions, [ctx.principal, actions_in, actions_file],
             [actions_table, actions_dl, actions_msg], **ctx.llm_queue)

    ctx.on_login.append(Refresher(refresh_kbs, [kbs]))
    ctx.on_kbs_changed.append(Refresher(refresh_kbs, [kbs], [kbs]))
