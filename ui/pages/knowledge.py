"""知识库: knowledge bases and their documents; multi-file upload with a progress bar and per-file results;
delete / re-index a document; chunk previews; the hit test (which chunks a query retrieves, BM25 vs dense), each
hit's 查看原文 opening its document at the passage (ui/source_view.py)."""
from __future__ import annotations

import re
from pathlib import Path

import gradio as gr

from assistant.answering import citation_label
from assistant.filters import STATUSES, Filters
from assistant.retrieval import query_terms
from assistant.services.access import AccessDenied
from ingest.loaders import SUPPORTED_SUFFIXES
from ui.common import (ROLE_NAMES, Refresher, UIContext, can_read, denied, esc, fail, friendly, highlight, notice,
                       readable_kbs, sensitivity_badge, status_badge)
from ui.session import note
from ui.source_view import build as build_source_view
from ui.source_view import positioned, source_link

SOURCE_VIEW = "hit-src"

RESULT_NAMES = {"added": "✅ 新增", "replaced": "🔄 已更新", "unchanged": "➖ 未变化", "duplicate": "⚠️ 重复",
                "failed": "❌ 失败", "skipped": "⏭️ 已跳过"}
DOC_HEADERS = ["标题", "文号", "发文机关", "成文日期", "效力", "密级", "类型", "分块", "入库时间"]
KB_HEADERS = ["名称", "说明", "文档数", "分块数", "向量模型", "创建时间"]
UPLOAD_HEADERS = ["文件", "结果", "分块", "标题", "说明"]
MODES = [("混合检索（BM25 + 向量，RRF 融合）", "hybrid"), ("仅 BM25 关键词", "bm25"), ("仅向量语义", "dense")]
AUTO_STATUS = "自动识别（默认现行有效）"
AUTO_LEVEL = "按规则（目录规则或默认密级）"


_MESSAGES = [
    (re.compile(r"cannot parse \.pdf file \(damaged or not a PDF\)"), "无法解析该 PDF（文件损坏或不是 PDF）"),
    (re.compile(r"cannot parse (\.\w+) file"), "无法解析该 {0} 文件"),
    (re.compile(r"cannot detect the text encoding"), "无法识别文字编码（已尝试 UTF-8、GB18030/GBK）"),
    (re.compile(r"no text found \(a scanned PDF needs OCR first\)"), "没有读到文字（扫描版 PDF 需先做文字识别）"),
    (re.compile(r"no text found|no text to index"), "没有读到可入库的文字"),
    (re.compile(r"the file is empty"), "文件为空"),
    (re.compile(r"the file is larger than (\d+) MiB"), "文件超过 {0} MiB"),
    (re.compile(r"unsupported file type ([.\w()]+)"), "不支持的文件类型 {0}"),
    (re.compile(r"same content as (\S+)"), "与已有文档 {0} 内容相同，未重复入库"),
    (re.compile(r"parsing \.doc needs LibreOffice"), "解析 .doc 需要安装 LibreOffice"),
    (re.compile(r"reading (\.\w+) files needs LibreOffice"), "读取 {0} 文件需要安装 LibreOffice"),
    (re.compile(r"LibreOffice did not convert the (\.\w+) file within"), "LibreOffice 转换 {0} 文件超时"),
    (re.compile(r"it has no OFD\.xml"), "不是 OFD 文件（缺少 OFD.xml）"),
    (re.compile(r"damaged OFD"), "OFD 文件已损坏"),
    (re.compile(r"metadata field '(\w+)' is (.+?); use"), "元数据字段 {0} 的值 {1} 无效"),
]


# how a file was read (DocResult.how), in Chinese where known
_HOW = [(re.compile(r"^OFD, (\d+) pages?$"), "OFD 版式文件，{0} 页"), (re.compile(r"^text layer$"), "读取文字层"),
        (re.compile(r"^converted by LibreOffice to (\.\w+)$"), "经 LibreOffice 转换为 {0}"),
        (re.compile(r"^(\d+) tables?$"), "{0} 个表格"),
        (re.compile(r"^OCR (\d+) of (\d+) pages?"), "文字识别（OCR）{1} 页中的 {0} 页"),
        (re.compile(r"^OCR (\d+) pages?"), "文字识别（OCR）{0} 页")]


def how_zh(how: list[str]) -> str:
    out = []
    for note in how or []:
        for rx, template in _HOW:
            if m := rx.match(note):
                note = template.format(*m.groups())
                break
        out.append(note)
    return "；".join(out)


def message_zh(message: str) -> str:
    """A per-file ingest message in Chinese where it is a known one (the original stays after it)."""
    for pattern, template in _MESSAGES:
        m = pattern.search(message or "")
        if m:
            zh = template.format(*m.groups())
            return zh if m.group(0) == message else f"{zh}（{message}）"
    return message or ""


def safe_name(name: str) -> str:
    """An uploaded file's own name, without any directory part or control characters."""
    base = Path(str(name).replace("\\", "/")).name
    base = re.sub(r"[\x00-\x1f/]", "_", base).strip(" .") or "upload"
    return base[:120]


def kb_rows(kbs: list[dict]) -> list[list]:
    return [[k["name"], k.get("description", ""), k.get("documents", 0), k.get("chunks", 0), k.get("embedding", ""),
             (k.get("created_at") or "")[:19].replace("T", " ")] for k in kbs]


def doc_rows(docs: list[dict]) -> list[list]:
    rows = []
    for d in docs:
        m = d.get("metadata") or {}
        state = "" if d.get("state") == "complete" else "（未完成）"
        rows.append([(d.get("title") or m.get("title", "") or d["doc_id"]) + state, m.get("doc_number", ""),
                     m.get("agency", ""), m.get("date", ""), m.get("status", ""), m.get("sensitivity", ""),
                     m.get("doc_type", ""),
                     d.get("n_chunks", 0), (d.get("ingested_at") or "")[:10]])
    return rows


def doc_choices(docs: list[dict]) -> list[tuple[str, str]]:
    return [(f"{(d.get('title') or d['doc_id'])[:40]} · {d['doc_id']}", d["doc_id"]) for d in docs]


def render_chunks(doc: dict) -> str:
    m = doc.get("metadata") or {}
    facts = [str(b) for b in (m.get("doc_number"), m.get("agency"), m.get("date"), doc.get("source")) if b]
    head = (f'<div class="src-title">{esc(doc.get("title") or doc["doc_id"])}{status_badge(m.get("status", ""))}'
            f'{sensitivity_badge(m.get("sensitivity"))}</div>'
            f'<div class="src-meta">{esc(" · ".join(facts))} · {len(doc.get("chunks", []))} 个分块</div>')
    cards = []
    for ch in doc.get("chunks", []):
        cm = ch.get("metadata") or {}
        where = cm.get("article") or cm.get("heading") or ""
        cards.append(f'<div class="src-card"><div class="src-label"><b>#{ch["position"] + 1}</b> {esc(where)} '
                     f'<span class="src-meta">（{len(ch["text"])} 字）</span></div>'
                     f'<div class="src-text">{esc(ch["text"])}</div></div>')
    if not cards:
        cards.append(notice("该文档没有分块。", "warn"))
    return f'<div class="src-panel">{head}{"".join(cards)}</div>'


def render_hits(hits: list, query: str, mode: str) -> str:
    if not hits:
        return notice("没有检索到任何分块：换个说法、放宽效力状态，或确认文档已入库。", "warn")
    terms = query_terms(query)
    rows = []
    for i, h in enumerate(hits, 1):
        why = []
        if h.bm25_rank:
            why.append(f"BM25 第 {h.bm25_rank} 名")
        if h.dense_rank:
            why.append(f"向量 第 {h.dense_rank} 名")
        if h.rerank_score is not None:
            why.append(f"重排 {h.rerank_score:.3f}")
        bm25 = (f"{h.bm25_score:.3f}<br><span class='hit-why'>第 {h.bm25_rank} 名</span>"
                if h.bm25_score is not None else "—")
        dense = (f"{h.dense_score:.3f}<br><span class='hit-why'>第 {h.dense_rank} 名</span>"
                 if h.dense_score is not None else "—")
        m = h.metadata or {}
        link = source_link(SOURCE_VIEW, h.kb, h.doc_id, h.chunk_id) if positioned(m) else ""
        rows.append(
            f"<tr><td class='num'>{i}</td><td class='num'>{h.score:.4f}</td><td class='num'>{bm25}</td>"
            f"<td class='num'>{dense}</td><td class='num'>{h.coverage:.0%}</td>"
            f"<td><div class='src-title' style='font-size:13px'>{esc(citation_label(m))}"
            f"{status_badge(m.get('status', ''))}{link}</div>"
            f"<div class='hit-why'>{esc(m.get('heading', ''))} · {esc(h.kb)}</div>"
            f"<div class='hit-why'>命中原因：{'，'.join(why) or '—'}</div>"
            f"<div class='hit-text'>{highlight(h.text, terms)}</div></td></tr>")
    explain = {"hybrid": "融合分 = Σ 1/(60 + 名次)，BM25 与向量两路各自排名后按倒数排名融合（RRF）。",
               "bm25": "仅 BM25：按关键词（jieba 分词）匹配打分。",
               "dense": "仅向量：按问题与分块的语义相似度（余弦）排序。"}[mode]
    return (f"<div class='hit-why' style='margin-bottom:6px'>{explain} 词覆盖 = 问题关键词在分块中出现的比例。</div>"
            "<div style='max-height:520px;overflow-y:auto'><table class='hit-table'><thead><tr><th>#</th><th>融合分</th>"
            "<th>BM25 分</th><th>向量相似度</th><th>词覆盖</th><th>分块</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


def build(ctx: UIContext) -> None:
    c = ctx.container
    kbsvc = c.knowledge_bases

    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=260):
            kb = gr.Dropdown(label="当前知识库", choices=[], elem_id="kb-select")
            kb_info = gr.Markdown("", elem_id="kb-info")
            with gr.Accordion("新建知识库", open=False, elem_id="kb-create-box"):
                new_name = gr.Textbox(label="名称", placeholder="字母、数字、下划线或短横线，如 policy_2025",
                                      elem_id="kb-new-name")
                new_desc = gr.Textbox(label="说明", placeholder="如：2025 年市政府规范性文件", elem_id="kb-new-desc")
                create = gr.Button("创建", variant="primary", size="sm", elem_id="kb-create")
            refresh = gr.Button("🔄 刷新", size="sm", elem_id="kb-refresh")
        with gr.Column(scale=9, min_width=640):
            with gr.Tabs(elem_id="kb-tabs"):
                with gr.Tab("文档", id="docs"):
                    docs_table = gr.Dataframe(headers=DOC_HEADERS, value=[], interactive=False, wrap=True,
                                              max_height=330, elem_id="kb-docs",
                                              column_widths=["23%", "13%", "13%", "11%", "8%", "6%", "9%", "5%",
                                                             "12%"])
                    doc = gr.Dropdown(label="选择文档（查看分块、重新索引或删除）", choices=[], elem_id="kb-doc")
                    with gr.Row():
                        show = gr.Button("查看分块", size="sm", min_width=90, elem_id="kb-show")
                        reindex_btn = gr.Button("重新索引", size="sm", min_width=90, elem_id="kb-reindex")
                        confirm = gr.Checkbox(label="确认删除（不可恢复）", value=False, min_width=160,
                                              elem_id="kb-confirm", container=False)
                        delete = gr.Button("删除文档", variant="stop", size="sm", min_width=90, elem_id="kb-delete")
                    doc_msg = gr.HTML("", elem_id="kb-doc-msg")
                    chunks = gr.HTML("", elem_id="kb-chunks")
                with gr.Tab("上传文件", id="upload"):
                    files = gr.File(label="拖放或点击选择文件（可多选）", file_count="multiple",
                                    file_types=sorted(SUPPORTED_SUFFIXES), height=150, elem_id="kb-files")
                    with gr.Row():
                        status = gr.Dropdown(label="效力状态", choices=[AUTO_STATUS, *STATUSES], value=AUTO_STATUS,
                                             scale=2)
                        level = gr.Dropdown(label="密级（数据分级）", choices=[AUTO_LEVEL, *c.classification.levels],
                                            value=AUTO_LEVEL, scale=2, elem_id="kb-upload-level")
                        upload_btn = gr.Button("开始入库", variant="primary", scale=1, elem_id="kb-upload")
                    gr.Markdown("支持 " + " ".join(sorted(SUPPORTED_SUFFIXES)) + "；同名文件再次上传会替换旧版本，"
                                "内容未变的文件会跳过。", elem_classes="ai-note")
                    upload_msg = gr.HTML("", elem_id="kb-upload-msg")
                    upload_table = gr.Dataframe(headers=UPLOAD_HEADERS, value=[], interactive=False, wrap=True,
                                                elem_id="kb-upload-results", max_height=300,
                                                column_widths=["24%", "10%", "6%", "30%", "30%"])
                with gr.Tab("全部知识库", id="all"):
                    kbs_table = gr.Dataframe(headers=KB_HEADERS, value=[], interactive=False, wrap=True,
                                             max_height=420, elem_id="kb-all",
                                             column_widths=["16%", "34%", "10%", "10%", "14%", "16%"])
                    gr.Markdown("只列出您有权阅读的知识库。", elem_classes="ai-note")
                with gr.Tab("命中测试", id="hittest"):
                    with gr.Row():
                        hq = gr.Textbox(label="测试问题", placeholder="输入一个问题，查看会检索到哪些分块以及原因",
                                        scale=5, elem_id="hit-query")
                        htopk = gr.Slider(1, 20, value=5, step=1, label="返回条数", scale=2)
                    with gr.Row():
                        hmode = gr.Radio(MODES, value="hybrid", label="检索方式", scale=5)
                        hall = gr.Checkbox(label="包括已废止等非现行文件", value=False, scale=2)
                        hrun = gr.Button("测试", variant="primary", scale=1, min_width=80, elem_id="hit-run")
                    hits = gr.HTML(notice("输入问题后点“测试”。结果列出每个分块的 BM25 分数与向量相似度及各自名次，"
                                          "便于判断为什么会（或不会）检索到某份文件。"), elem_id="hit-results")
                    build_source_view(ctx, SOURCE_VIEW)

    # -- handlers ------------------------------------------------------------------------------------------------
    def info_md(name: str | None, principal) -> str:
        if not name:
            return "暂无可访问的知识库。" + ("可在下方新建。" if principal and principal.role in ("admin", "editor") else "")
        try:
            i = kbsvc.info(name, principal=principal)
        except Exception as exc:  # noqa: BLE001
            return f"⚠️ {friendly(exc)}"
        by_status = "、".join(f"{k or '未标注'} {v}" for k, v in i.get("by_status", {}).items()) or "无"
        can = "可编辑" if principal and principal.can_write(name) else "只读"
        return (f"**{esc(name)}**　{esc(i.get('description') or '')}\n\n"
                f"文档 {i['documents']} 份 · 分块 {i['chunks']} 个 · 向量 {i['vectors']} 条"
                + (f" · 待完成 {i['pending_documents']}" if i.get("pending_documents") else "")
                + f"\n\n效力：{by_status}\n\n向量模型：`{i.get('embedding', '')}` · 您的权限：{can}")

    def load_kb(principal, name):
        note(kb=name)
        if name and not can_read(principal, name):
            note(outcome="denied")
            return "", [], gr.update(choices=[], value=None), ""
        try:
            docs = kbsvc.documents(name, principal=principal) if name else []
        except Exception as exc:  # noqa: BLE001
            note(outcome="error")
            return f"⚠️ {friendly(exc)}", [], gr.update(choices=[], value=None), ""
        return (info_md(name, principal), doc_rows(docs), gr.update(choices=doc_choices(docs), value=None), "")

    def refresh_all(principal, current=None):
        kbs = readable_kbs(c, principal)
        names = [k["name"] for k in kbs]
        value = current if current in names else (names[0] if names else None)
        return (gr.update(choices=names, value=value), *load_kb(principal, value), kb_rows(kbs))

    def check_writable(principal, name):
        note(kb=name)
        if not name:
            raise gr.Error("请先选择知识库。", title="未选择知识库")
        if not principal.can_write(name):
            raise denied(f"您（{ROLE_NAMES.get(principal.role, principal.role)}）没有修改知识库 {name} 的权限。")

    def create_kb(principal, name, desc):
        name = (name or "").strip()
        note(kb=name)
        if not name:
            raise gr.Error("请填写知识库名称。", title="无法创建")
        if principal.role not in ("admin", "editor"):
            raise denied("只有管理员或编辑可以新建知识库。")
        try:
            kbsvc.create(name, (desc or "").strip(), principal=principal)
        except Exception as exc:  # noqa: BLE001
            raise fail(exc, "创建失败") from None
        gr.Info(f"已创建知识库 {name}")
        return (*refresh_all(principal, name), "", "")

    def upload(principal, name, paths, status_v, level_v, progress=gr.Progress()):
        check_writable(principal, name)
        if not paths:
            raise gr.Error("请先选择要上传的文件。", title="没有文件")
        paths = [p if isinstance(p, str) else getattr(p, "name", str(p)) for p in paths]
        names = {str(Path(p)): f"upload/{safe_name(Path(p).name)}" for p in paths}
        extra = {"status": status_v} if status_v and status_v in STATUSES else {}
        if level_v in c.classification.levels:
            extra["sensitivity"] = level_v
        progress((0, len(paths)), desc="准备入库…", unit="份")

        def on_progress(phase, done, total, detail=""):
            label = Path(detail).name if detail and ("/" in detail or "\\" in detail) else detail
            progress((done, total or len(paths)), desc=f"正在入库：{label}"[:60] if label else "正在入库…",
                     unit="份")

        try:
            report = kbsvc.ingest_paths(name, paths, on_progress, principal=principal, source_names=names,
                                        extra_metadata=extra or None)
        except AccessDenied as exc:
            raise fail(exc, "无权限") from None
        except Exception as exc:  # noqa: BLE001
            raise fail(exc, "入库失败") from None
        note(outcome="ok" if report.ok else "partial", sources=[r.doc_id for r in report.results if r.doc_id])
        rows = []
        for r in report.results:
            src = r.source.split("upload/", 1)[-1] if r.source.startswith("upload/") else Path(r.source).name
            said = "；".join(p for p in (message_zh(r.message), how_zh(r.how)) if p)
            rows.append([src, RESULT_NAMES.get(r.status, r.status), r.chunks, r.title, said])
        counts = "，".join(f"{RESULT_NAMES.get(k, k)} {v}" for k, v in sorted(report.counts.items()))
        kind = "ok" if report.ok else "warn"
        msg = notice(f"知识库 <b>{esc(name)}</b>：{counts}；写入 {report.chunks} 个分块，用时 {report.seconds:.1f} 秒。", kind)
        return (msg, rows, None, *load_kb(principal, name))

    def show_chunks(principal, name, doc_id):
        note(kb=name, sources=[doc_id] if doc_id else None)
        if not name or not doc_id:
            raise gr.Error("请先选择文档。", title="未选择文档")
        if not can_read(principal, name):
            raise denied(f"无权访问知识库 {name}。")
        try:
            d = kbsvc.document(name, doc_id, with_chunks=True, principal=principal)
        except Exception as exc:  # noqa: BLE001
            raise fail(exc, "读取失败") from None
        return render_chunks(d)

    def reindex(principal, name, doc_id, progress=gr.Progress()):
        check_writable(principal, name)
        if not doc_id:
            raise gr.Error("请先选择文档。", title="未选择文档")
        note(sources=[doc_id])
        progress(None, desc="正在重新索引…")
        try:
            report = kbsvc.reindex_document(name, doc_id, principal=principal)
        except Exception as exc:  # noqa: BLE001
            raise fail(exc, "重新索引失败") from None
        note(outcome="ok" if report.ok else "error")
        r = report.results[0] if report.results else None
        kind = "ok" if report.ok else "err"
        text = (f"已重新索引：{esc(r.title or doc_id)}，{r.chunks} 个分块，用时 {report.seconds:.1f} 秒。"
                if r and report.ok else f"重新索引失败：{esc(r.message if r else '')}")
        info, rows, _choices, _ = load_kb(principal, name)
        return notice(text, kind), info, rows

    def delete_document(principal, name, doc_id, confirmed):
        check_writable(principal, name)
        if not doc_id:
            raise gr.Error("请先选择文档。", title="未选择文档")
        note(sources=[doc_id])
        if not confirmed:
            raise gr.Error("删除不可恢复：请先勾选“确认删除”。", title="需要确认")
        try:
            kbsvc.delete_document(name, doc_id, principal=principal)
        except Exception as exc:  # noqa: BLE001
            raise fail(exc, "删除失败") from None
        info, rows, choices, _ = load_kb(principal, name)
        return notice(f"已删除文档 {esc(doc_id)}。", "ok"), info, rows, choices, False, ""

    def hit_test(principal, name, query, mode, top_k, include_all):
        note(kb=name, question=query)
        if not name:
            raise gr.Error("请先选择知识库。", title="未选择知识库")
        if not (query or "").strip():
            raise gr.Error("请输入测试问题。", title="无法测试")
        flt = Filters(status=["*"]) if include_all else None
        try:
            result = c.search.search(query, [name], flt, int(top_k), principal=principal, mode=mode)
        except Exception as exc:  # noqa: BLE001
            raise fail(exc, "检索失败") from None
        note(sources=[h.chunk_id for h in result.hits])
        t = result.timings
        took = " · ".join(f"{k.replace('_ms', '')} {v:.0f} ms" for k, v in t.items() if v >= 0.5)
        return render_hits(result.hits, query, mode) + (f"<div class='hit-why'>耗时：{esc(took)}</div>" if took else "")

    def list_kbs(principal):
        return kb_rows(readable_kbs(c, principal))

    kb_outputs = [kb_info, docs_table, doc, chunks]
    ctx.bind(kb.change, load_kb, [ctx.principal, kb], kb_outputs, show_progress="hidden")
    ctx.bind(refresh.click, refresh_all, [ctx.principal, kb], [kb, *kb_outputs, kbs_table])
    ev = ctx.bind(create.click, create_kb, [ctx.principal, new_name, new_desc],
                  [kb, *kb_outputs, kbs_table, new_name, new_desc])
    ctx.kbs_changed(ev)
    ev = ctx.bind(upload_btn.click, upload, [ctx.principal, kb, files, status, level],
                  [upload_msg, upload_table, files, *kb_outputs], show_progress="full")
    ctx.kbs_changed(ev)
    ctx.bind(show.click, show_chunks, [ctx.principal, kb, doc], [chunks])
    doc.change(lambda: "", None, [chunks], show_progress="hidden", api_visibility="private")
    ctx.bind(reindex_btn.click, reindex, [ctx.principal, kb, doc], [doc_msg, kb_info, docs_table])
    ctx.kbs_changed(ctx.bind(delete.click, delete_document, [ctx.principal, kb, doc, confirm],
                             [doc_msg, kb_info, docs_table, doc, confirm, chunks]))
    ctx.bind(hrun.click, hit_test, [ctx.principal, kb, hq, hmode, htopk, hall], [hits])
    ctx.bind(hq.submit, hit_test, [ctx.principal, kb, hq, hmode, htopk, hall], [hits])

    ctx.on_login.append(Refresher(refresh_all, [kb, *kb_outputs, kbs_table]))
    ctx.on_kbs_changed.append(Refresher(list_kbs, [kbs_table]))
