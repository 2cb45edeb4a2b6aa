"""摘要: upload or paste documents → structured summary (要点, 责任单位, 时间节点) → download as Markdown.
Over container.summarize.summarize_text(text, title="", style="structured") -> dict."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gradio as gr

from ui.common import UIContext, disabled_notice, download_file, fail, notice, service
from ui.session import note

MAX_FILES = 10
EMPTY = notice("上传文件或粘贴全文后点“生成摘要”。结果按“要点、责任单位、时间节点”等结构整理，可下载为 Markdown。")
# how the summarizer's fields are titled, in this order; other fields follow under their own names
FIELD_TITLES = [("title", "标题"), ("summary", "摘要"), ("overview", "概述"), ("key_points", "要点"),
                ("points", "要点"), ("要点", "要点"), ("responsible_units", "责任单位"), ("units", "责任单位"),
                ("责任单位", "责任单位"), ("deadlines", "时间节点"), ("timeline", "时间节点"), ("时间节点", "时间节点"),
                ("actions", "工作任务"), ("keywords", "关键词")]
STYLES = [("结构化摘要", "structured"), ("一段话摘要", "brief"),
          ("工作任务清单", "action-items")]
SKIP = {"markdown", "ai_label", "sections", "fingerprint", "prompt_version", "llm_calls", "n_parts", "content_hash",
        "doc_id", "doc_number", "agency", "date", "doc_type", "ai_generated", "timings", "usage", "model", "style",
        "text", "chars", "warnings", "source_chars", "chunks", "title"}


def read_upload(file: Any) -> str:
    """The text of an uploaded file, through the same loaders as ingestion (any encoding, docx, pdf ...)."""
    from ingest.loaders import LoadError, SourceDocument, load_file
    path = Path(file if isinstance(file, str) else getattr(file, "name", str(file)))
    try:
        docs = [d for d in load_file(path, source_name=path.name) if isinstance(d, SourceDocument)]
    except LoadError as exc:
        raise ValueError(f"{path.name}：{exc.message}") from None
    if not docs:
        raise ValueError(f"{path.name}：没有读到文字")
    return "\n\n".join(d.text for d in docs)


def _item(v: Any) -> str:
    if isinstance(v, dict):
        main = next((v[k] for k in ("text", "point", "事项", "item", "content", "unit", "name") if v.get(k)), "")
        rest = [f"{k}：{x}" for k, x in v.items() if x and x != main and k not in ("n", "id", "source", "sources")]
        cites = v.get("sources") or v.get("source")
        cites = "".join(f"[{c}]" for c in cites) if isinstance(cites, list) else (f"[{cites}]" if cites else "")
        return str(main) + (f"（{'；'.join(rest)}）" if rest and main else "；".join(rest)) + cites
    return str(v)


def to_markdown(result: dict, title: str = "") -> str:
    """The summary as Markdown: a heading with the document's 文号/机关/日期, the service's own `markdown` (or its
    fields in a fixed order), the legend of the 〔Sn〕 source paragraphs, and the AI-generated label."""
    if isinstance(result.get("markdown"), str) and result["markdown"].strip():
        head = [f"# {result.get('title') or title or '文件摘要'}"]
        meta = " · ".join(str(result[k]) for k in ("doc_number", "agency", "date") if result.get(k))
        if meta:
            head.append(meta)
        md = "\n\n".join(head + [result["markdown"].strip()])
        sections = [x for x in result.get("sections") or [] if isinstance(x, dict) and x.get("id")]
        if sections and re.search(r"S\d+", result["markdown"]):
            md += "\n\n**出处段落**：" + "；".join(f"{x['id']} {x.get('heading') or '（开头）'}" for x in sections)
    else:
        lines = [f"# {result.get('title') or title or '文件摘要'}", ""]
        seen = set()
        keys = [k for k, _ in FIELD_TITLES if k in result] + [k for k in result if k not in dict(FIELD_TITLES)]
        for key in keys:
            if key in seen or key in SKIP:
                continue
            seen.add(key)
            value = result[key]
            if value in (None, "", [], {}):
                continue
            heading = dict(FIELD_TITLES).get(key, key)
            lines.append(f"## {heading}")
            if isinstance(value, list):
                lines += [f"- {_item(v)}" for v in value]
            elif isinstance(value, dict):
                lines += [f"- **{k}**：{_item(v)}" for k, v in value.items()]
            else:
                lines.append(str(value))
            lines.append("")
        md = "\n".join(lines).strip()
    if "人工智能" not in md:
        label = result.get("ai_label")
        if not label:
            from assistant.prompts import load_prompt
            label = load_prompt("ai_label")
        md += "\n\n---\n" + label
    return md


def build(ctx: UIContext) -> None:
    c = ctx.container
    svc = service(c, "summarize")
    if svc is None or not callable(getattr(svc, "summarize_text", None)):
        gr.HTML(disabled_notice("文件摘要", "需要 container.summarize.summarize_text。"), elem_id="summary-disabled")
        return

    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=420):
            files = gr.File(label=f"上传文件（可多选，最多 {MAX_FILES} 份，逐份摘要）", file_count="multiple",
                            file_types=[".txt", ".md", ".docx", ".pdf", ".html", ".pptx", ".xlsx"], height=150,
                            elem_id="summary-files")
            text = gr.Textbox(label="或粘贴全文", lines=8, max_lines=24, elem_id="summary-text",
                              placeholder="粘贴通知、报告、会议纪要等全文")
            with gr.Row():
                title = gr.Textbox(label="标题（可选）", placeholder="不填则从正文识别", elem_id="summary-title", scale=2)
                style = gr.Dropdown(label="摘要形式", choices=STYLES, value="structured", scale=2,
                                    elem_id="summary-style")
            run = gr.Button("生成摘要", variant="primary", elem_id="summary-run")
        with gr.Column(scale=7, min_width=520):
            output = gr.Markdown(EMPTY, elem_id="summary-output", height=520, buttons=["copy"], container=True,
                                 padding=True)
            download = gr.DownloadButton("下载摘要（Markdown）", size="sm", interactive=False,
                                         elem_id="summary-download")

    def summarize(principal, files_v, text_v, title_v, style_v, progress=gr.Progress()):
        inputs: list[tuple[str, str]] = []
        for f in (files_v or [])[:MAX_FILES]:
            name = Path(f if isinstance(f, str) else getattr(f, "name", str(f))).name
            try:
                doc_title = (title_v or "").strip() if len(files_v) == 1 and title_v else Path(name).stem
                inputs.append((doc_title, read_upload(f)))
            except Exception as exc:  # noqa: BLE001
                raise fail(exc, "读取文件失败") from None
        if (text_v or "").strip():
            inputs.append(((title_v or "").strip(), text_v.strip()))
        if not inputs:
            raise gr.Error("请上传文件或粘贴全文。", title="没有内容")
        if files_v and len(files_v) > MAX_FILES:
            gr.Warning(f"一次最多摘要 {MAX_FILES} 份，其余未处理。")
        note(question="、".join(t for t, _ in inputs if t) or None)
        parts = []
        for i, (doc_title, body) in enumerate(inputs):
            progress((i, len(inputs)), desc=f"正在摘要：{doc_title or '粘贴的文本'}", unit="份")
            try:
                result = svc.summarize_text(body, title=doc_title or "", style=style_v or "structured")
            except Exception as exc:  # noqa: BLE001
                raise fail(exc, "摘要失败") from None
            parts.append(to_markdown(result if isinstance(result, dict) else {"summary": str(result)}, doc_title))
        md = "\n\n---\n\n".join(parts)
        name = (inputs[0][0] or "文件摘要")[:40] + ("等" if len(inputs) > 1 else "") + "-摘要.md"
        return md, gr.update(value=download_file(name, md + "\n"), interactive=True)

    ctx.bind(run.click, summarize, [ctx.principal, files, text, title, style], [output, download], **ctx.llm_queue)

