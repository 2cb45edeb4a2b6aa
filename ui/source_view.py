"""原文定位: a citation's 查看原文 link (in the answer's sources, in the hit test) opens its document at the passage —
a PDF's page rendered on the server with the passage highlighted, any other format's extracted text scrolled to
the passage in a <mark>. Through container.originals as the session principal (its read check), audited like
every handler (ui.source_view.open_source); nothing is fetched from outside: the page image is a data: URL.

The link is plain HTML inside a gr.HTML panel; the page's script (SOURCE_VIEW_JS, loaded once by mount_ui) puts
what was clicked into the view's hidden pick box and clicks its hidden button, which runs the handler."""
from __future__ import annotations

import base64
import json

import gradio as gr

from assistant.components import pdf_view
from ui.common import UIContext, esc, fail, notice
from ui.session import note

CONTEXT_CHARS = 4000          # text shown either side of the passage (a long document is not sent whole)

SOURCE_VIEW_JS = """
() => {
  document.addEventListener('click', (e) => {
    const link = e.target.closest('[data-source-view]');
    if (!link) return;
    e.preventDefault();
    const view = link.dataset.sourceView;
    const box = document.querySelector('#' + view + '-pick textarea, #' + view + '-pick input');
    const go = document.querySelector('#' + view + '-go');
    if (!box || !go) return;
    box.value = JSON.stringify({kb: link.dataset.kb, doc: link.dataset.doc, chunk: link.dataset.chunk,
                                at: Date.now()});
    box.dispatchEvent(new Event('input', {bubbles: true}));
    setTimeout(() => go.click(), 30);
  });
  // a new text view scrolls its passage to the middle, once
  new MutationObserver(() => {
    document.querySelectorAll('.src-view-text:not([data-scrolled])').forEach((el) => {
      el.dataset.scrolled = '1';
      const mark = el.querySelector('mark');
      if (mark) el.scrollTop = mark.offsetTop - el.clientHeight / 3;
      el.closest('.src-view').scrollIntoView({block: 'nearest'});
    });
  }).observe(document.body, {childList: true, subtree: true});
}
"""

SOURCE_VIEW_CSS = """
.src-open { font-size: 12px; color: #1d4ed8; cursor: pointer; background: none; border: none; padding: 0 0 0 6px;
  text-decoration: underline; }
.src-view { border: 1px solid #cbd5e1; border-radius: 6px; padding: 8px 10px; margin-top: 8px; background: #fff; }
.src-view-head { font-size: 13px; color: #334155; margin-bottom: 6px; }
.src-view-text { position: relative; max-height: 420px; overflow-y: auto; white-space: pre-wrap; font-size: 13px;
  line-height: 1.7; color: #1e293b; }
.src-view-text mark { background: #fde68a; padding: 1px 0; }
.src-view-page { max-height: 640px; overflow-y: auto; }
.src-view-page img { width: 100%; height: auto; border: 1px solid #e2e8f0; }
"""


def source_link(view: str, kb: str, doc_id: str, chunk_id: str) -> str:
    """The 查看原文 link of a passage, for the source view named `view` (its elem_id prefix)."""
    return (f'<button type="button" class="src-open" data-source-view="{esc(view)}" data-kb="{esc(kb)}" '
            f'data-doc="{esc(doc_id)}" data-chunk="{esc(chunk_id)}">查看原文</button>')


def positioned(meta: dict | None) -> bool:
    """Whether a passage knows where it stands (chunks stored before positions, the 文件信息 passage do not)."""
    return bool((meta or {}).get("offsets") or (meta or {}).get("pages"))


def render_text(p: dict) -> str:
    """The extracted text around the passage, the passage in a <mark> (HTML-escaped)."""
    text, offset, span = p["text"], p["offset"], p.get("span")
    before = "…（前文略）\n" if offset > 0 else ""
    after = "\n…（后文略）" if offset + len(text) < p["chars"] else ""
    if span:
        s, e = span[0] - offset, span[1] - offset
        body = f"{esc(text[:s])}<mark id=\"src-mark\">{esc(text[s:e])}</mark>{esc(text[e:])}"
    else:
        body = esc(text)
    return f'<div class="src-view-text">{esc(before)}{body}{esc(after)}</div>'


def render_page(p: dict, image: pdf_view.PageImage) -> str:
    data = base64.b64encode(image.png).decode("ascii")
    state = "引用段落已高亮" if image.found else "未能在页面中定位引用段落，显示其所在页"
    return (f'<div class="src-view-head">第 {image.page} 页 / 共 {image.pages} 页 · {state}</div>'
            f'<div class="src-view-page"><img alt="{esc(p["title"])} 第 {image.page} 页" '
            f'src="data:image/png;base64,{data}" data-found="{str(image.found).lower()}"></div>')


def render(p: dict, image: pdf_view.PageImage | None) -> str:
    where = f"（第 {'、'.join(map(str, p['pages']))} 页）" if p.get("pages") else ""
    head = (f'<div class="src-view-head"><b>原文：{esc(p["title"] or p["doc_id"])}</b>{esc(where)}'
            f'{" · " + esc(p["name"]) if p.get("name") else ""}</div>')
    body = render_page(p, image) if image is not None else render_text(p)
    return f'<div class="src-view" data-doc="{esc(p["doc_id"])}">{head}{body}</div>'


def show_source(container, principal, picked: str) -> str:
    """The view's HTML for the picked passage ({kb, doc, chunk} as JSON), read as the principal."""
    try:
        pick = json.loads(picked or "{}")
        kb, doc_id, chunk_id = str(pick["kb"]), str(pick["doc"]), str(pick["chunk"])
    except (ValueError, KeyError, TypeError):
        raise gr.Error("请点击依据中的“查看原文”。", title="无法打开原文") from None
    note(kb=kb, sources=[chunk_id])
    svc = container.originals
    try:
        p = svc.passage(kb, doc_id, principal=principal, chunk_id=chunk_id, context=CONTEXT_CHARS)
        image = None
        if p["is_pdf"] and pdf_view.available():
            image = svc.page_image(kb, doc_id, principal=principal, chunk_id=chunk_id, page=p["page"])
    except Exception as exc:  # noqa: BLE001 - denied, gone, not kept: a toast naming it
        raise fail(exc, "无法打开原文") from None
    return render(p, image)


def build(ctx: UIContext, view: str) -> gr.HTML:
    """The view under elem_id `view` (links name it), its hidden pick box and button, and the handler."""
    pick = gr.Textbox(visible="hidden", elem_id=f"{view}-pick")
    go = gr.Button("打开原文", visible="hidden", elem_id=f"{view}-go")
    out = gr.HTML("", elem_id=f"{view}-view")

    def open_source(principal, picked):              # audited as ui.source_view.open_source
        return show_source(ctx.container, principal, picked)

    ctx.bind(go.click, open_source, [ctx.principal, pick], [out], show_progress="minimal")
    return out

