"""评测: the latest evaluation reports (report.md, summary.json and PNG charts written by the eval harness under
its --out folder), read from the configured reports folder: env GOV_ASSISTANT_EVAL_DIR (several separated by
':'), else <data_dir>/eval and ./eval-runs. A report run over a knowledge base (summary.json: a suite's
options.kb) is listed only to principals who may read that knowledge base; one without a readable summary.json
only to admins."""
from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
from pathlib import Path

import gradio as gr

from assistant.settings import PROJECT_ROOT
from ui.common import UIContext, Refresher, esc, notice
from ui.session import note

ENV_DIR = "GOV_ASSISTANT_EVAL_DIR"
MAX_DEPTH = 3
MAX_REPORT_CHARS = 60_000
MAX_CHARTS = 12


def report_roots(settings) -> list[Path]:
    if os.environ.get(ENV_DIR):
        return [Path(p).expanduser() for p in os.environ[ENV_DIR].split(os.pathsep) if p.strip()]
    data_dir = Path(settings.data_dir)
    if not data_dir.is_absolute():
        data_dir = Path.cwd() / data_dir
    return [data_dir / "eval", PROJECT_ROOT / "eval-runs"]


def find_reports(roots: list[Path]) -> list[Path]:
    """Folders holding a report.md or summary.json, newest first."""
    found: dict[Path, float] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            depth = len(Path(dirpath).relative_to(root).parts)
            if depth >= MAX_DEPTH:
                dirnames[:] = []
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            if "report.md" in filenames or "summary.json" in filenames:
                p = Path(dirpath)
                mtimes = [(p / f).stat().st_mtime for f in ("report.md", "summary.json") if (p / f).exists()]
                found[p.resolve()] = max(mtimes)
    return sorted(found, key=lambda p: -found[p])


def _label(folder: Path, roots: list[Path]) -> str:
    when = dt.datetime.fromtimestamp(max((folder / f).stat().st_mtime for f in ("report.md", "summary.json")
                                         if (folder / f).exists())).strftime("%Y-%m-%d %H:%M")
    for root in roots:
        try:
            return f"{folder.relative_to(root.resolve()) or folder.name} · {when}"
        except ValueError:
            continue
    return f"{folder.name} · {when}"


def resolve_report(folder: str, roots: list[Path]) -> Path | None:
    """The report folder if it lies under one of the report roots (the dropdown value comes from the browser)."""
    try:
        p = Path(folder).resolve()
    except (OSError, ValueError):
        return None
    allowed = [r.resolve() for r in roots]
    if p.is_dir() and any(p == r or r in p.parents for r in allowed):
        return p
    return None


def report_kbs(folder: Path) -> set[str] | None:
    """The knowledge bases a report's suites ran over (summary.json options.kb), or None if it cannot be read."""
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        return {str(agg["run"]["options"]["kb"]) for agg in summary.get("suites", {}).values()
                if ((agg.get("run") or {}).get("options") or {}).get("kb")}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return None


def may_read_report(principal, folder: Path) -> bool:
    """A report may quote its knowledge bases' questions, answers and passages: only for who may read them all
    (an admin where summary.json does not say)."""
    if principal.role == "admin":
        return True
    kbs = report_kbs(folder)
    return kbs is not None and all(principal.can_read(kb) for kb in kbs)


def charts_html(pngs: list[Path]) -> str:
    """The charts inline (data: URIs), so no file route has to be opened for the reports folder."""
    if not pngs:
        return notice("该报告没有图表。")
    figs = []
    for p in pngs:
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        figs.append(f"<figure style='margin:0 0 12px 0'><img alt='{esc(p.stem)}' src='data:image/png;base64,{data}' "
                    f"style='width:100%;border:1px solid #e2e8f0;border-radius:6px'/>"
                    f"<figcaption class='hit-why'>{esc(p.name)}</figcaption></figure>")
    return "<div style='max-height:560px;overflow-y:auto'>" + "".join(figs) + "</div>"


def load_report(folder: Path) -> tuple[str, list[Path], dict | None]:
    md = ""
    if (folder / "report.md").exists():
        md = (folder / "report.md").read_text(encoding="utf-8", errors="replace")[:MAX_REPORT_CHARS]
        md = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", md)   # charts are shown in the gallery, not as broken links
    charts = sorted(folder.glob("*.png"), key=lambda p: ("latency" in p.stem, p.name))[:MAX_CHARTS]   # quality first
    summary = None
    if (folder / "summary.json").exists():
        try:
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = {"错误": "summary.json 无法解析"}
    return md, charts, summary


def build(ctx: UIContext) -> None:
    c = ctx.container
    settings = c.settings
    with gr.Row():
        pick = gr.Dropdown(label="评测报告（最新在前）", choices=[], scale=5, elem_id="eval-pick")
        refresh = gr.Button("🔄 刷新", size="sm", scale=1, min_width=80, elem_id="eval-refresh")
    where = gr.Markdown("", elem_classes="ai-note", elem_id="eval-where")
    empty = gr.HTML("", elem_id="eval-empty")
    with gr.Row(equal_height=False, visible=False) as body:
        with gr.Column(scale=6):
            report = gr.Markdown("", elem_id="eval-report", height=560, container=True, padding=True)
        with gr.Column(scale=5):
            gr.Markdown("#### 图表")
            charts = gr.HTML("", elem_id="eval-charts")
            with gr.Accordion("summary.json", open=False):
                summary = gr.JSON(label="汇总指标", elem_id="eval-summary")

    def listing(principal, current=None):
        roots = report_roots(settings)
        folders = [f for f in find_reports(roots) if may_read_report(principal, f)]
        choices = [(_label(f, roots), str(f)) for f in folders]
        dirs = "、".join(f"`{r}`" for r in roots)
        if not folders:
            msg = notice("还没有评测报告。运行评测（例如 <code>gov-assistant eval …</code>，输出目录设为下列目录之一，"
                         "或设置环境变量 GOV_ASSISTANT_EVAL_DIR 指向评测输出目录）后点“刷新”。", "warn")
            return gr.update(choices=[], value=None), f"报告目录：{dirs}", msg, gr.update(visible=False)
        value = current if current in {v for _, v in choices} else choices[0][1]
        return (gr.update(choices=choices, value=value), f"报告目录：{dirs} · 共 {len(folders)} 份", "",
                gr.update(visible=True))

    def show_report(principal, folder):
        if not folder:
            return "", "", None
        note(question=folder)
        p = resolve_report(folder, report_roots(settings))
        if p is None or not may_read_report(principal, p):   # a value from the browser: checked again
            note(outcome="rejected")
            return f"⚠️ 报告不存在：{esc(folder)}", "", None
        md, pngs, data = load_report(p)
        return md or "（该报告没有 report.md）", charts_html(pngs), data

    ctx.bind(refresh.click, listing, [ctx.principal, pick], [pick, where, empty, body])
    ctx.bind(pick.change, show_report, [ctx.principal, pick], [report, charts, summary], show_progress="hidden")
    ctx.on_login.append(Refresher(listing, [pick, where, empty, body]))
