"""Look and feel: local system fonts only (no web-font CDN), a restrained government red, compact spacing for
1280×800 screens."""
from __future__ import annotations

import gradio as gr

# System fonts only: a gr.themes.GoogleFont here would make every page load fetch fonts.googleapis.com.
FONT = ["system-ui", "-apple-system", "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei",
        "Source Han Sans SC", "Helvetica Neue", "Arial", "sans-serif"]
FONT_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "WenQuanYi Micro Hei Mono", "monospace"]


def build_theme() -> gr.themes.Base:
    return gr.themes.Soft(
        primary_hue=gr.themes.colors.red,
        secondary_hue=gr.themes.colors.slate,
        neutral_hue=gr.themes.colors.slate,
        radius_size=gr.themes.sizes.radius_sm,
        spacing_size=gr.themes.sizes.spacing_sm,
        text_size=gr.themes.sizes.text_md,
        font=FONT,
        font_mono=FONT_MONO,
    ).set(
        button_primary_background_fill="#b91c1c",
        button_primary_background_fill_hover="#991b1b",
        button_primary_text_color="#ffffff",
        block_title_text_weight="600",
        block_label_text_weight="600",
    )


CSS = """
.gradio-container { max-width: 1280px !important; width: 100% !important; margin: 0 auto !important; }
footer { display: none !important; }
#top-bar { border-bottom: 3px solid #b91c1c; align-items: center; padding-bottom: 4px; flex-wrap: nowrap; }
#app-header-wrap { flex-grow: 3 !important; }
#app-header { display: flex; align-items: center; gap: 10px; padding: 4px 2px; }
#app-header .logo { display: inline-flex; width: 34px; height: 34px; border-radius: 50%; background: #b91c1c;
  color: #fde68a; font-weight: 700; font-size: 18px; align-items: center; justify-content: center; }
#app-header h1 { font-size: 22px; margin: 0; color: #7f1d1d; letter-spacing: 1px; }
#app-header .sub { color: #64748b; font-size: 13px; }
#user-badge { flex-grow: 1 !important; }
#user-info { text-align: right; font-size: 13px; color: #334155; line-height: 1.5; }
#logout { align-self: center; }
#login-box { max-width: 460px; margin: 40px auto 0 auto !important; }
.ai-note, .ai-note * { font-size: 12px !important; color: #64748b !important; }
.src-panel { max-height: 560px; overflow-y: auto; padding-right: 4px; }
.src-empty { color: #64748b; font-size: 14px; padding: 24px 8px; text-align: center; border: 1px dashed #cbd5e1;
  border-radius: 6px; }
.src-query { font-size: 12px; color: #64748b; margin-bottom: 6px; }
.src-card { border: 1px solid #e2e8f0; border-left: 4px solid #b91c1c; border-radius: 6px; padding: 8px 10px;
  margin-bottom: 8px; background: #fff; }
.src-card.uncited { border-left-color: #cbd5e1; opacity: .85; }
.src-title { font-weight: 600; font-size: 14px; color: #0f172a; }
.src-n { color: #b91c1c; font-weight: 700; margin-right: 4px; }
.src-label { font-size: 13px; color: #334155; margin-top: 2px; }
.src-meta { font-size: 12px; color: #64748b; margin-top: 2px; }
.src-notice { font-size: 12px; color: #92400e; background: #fef3c7; border-radius: 4px; padding: 1px 6px;
  margin-top: 4px; }
.src-heading { font-size: 12px; color: #475569; margin-top: 4px; }
.src-text { font-size: 13px; line-height: 1.6; color: #1e293b; margin-top: 4px; white-space: pre-wrap; }
.src-text mark, .hit-text mark { background: #fde68a; padding: 0 1px; border-radius: 2px; }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 9px; margin-left: 4px;
  line-height: 18px; vertical-align: middle; }
.badge-ok { background: #dcfce7; color: #166534; }
.badge-bad { background: #fee2e2; color: #991b1b; }
.badge-warn { background: #fef3c7; color: #92400e; }
.badge-cited { background: #b91c1c; color: #fff; }
.badge-level { background: #e0e7ff; color: #3730a3; }
.me-table th { text-align: left; padding: 2px 12px 2px 0; color: #475569; font-weight: 500; }
.badge-related { background: #e2e8f0; color: #475569; }
.src-card.related { border-left-color: #94a3b8; border-style: dashed; background: #f8fafc; }
.related-head { font-size: 13px; font-weight: 600; color: #475569; margin: 10px 0 6px; }
.verify-note { border: 1px solid #fcd34d; background: #fffbeb; border-radius: 6px; padding: 6px 10px; margin: 6px 0;
  font-size: 13px; color: #92400e; }
.verify-head { font-weight: 600; }
.removed-list { margin: 4px 0 0 0; padding-left: 18px; }
.removed-sentence { color: #94a3b8; text-decoration: line-through; }
.removed-why { margin-left: 6px; font-size: 12px; color: #b45309; }
.src-foot { font-size: 12px; color: #64748b; margin-top: 6px; }
.hit-table { width: 100%; border-collapse: collapse; font-size: 13px; }
.hit-table th { background: #f1f5f9; text-align: left; padding: 6px; position: sticky; top: 0; }
.hit-table td { border-top: 1px solid #e2e8f0; padding: 6px; vertical-align: top; }
.hit-table td.num { white-space: nowrap; font-variant-numeric: tabular-nums; }
.hit-text { max-height: 120px; overflow-y: auto; line-height: 1.5; }
.hit-why { font-size: 12px; color: #64748b; }
.notice { padding: 10px 12px; border-radius: 6px; background: #f8fafc; border: 1px solid #e2e8f0; color: #334155; }
.notice.warn { background: #fffbeb; border-color: #fde68a; color: #92400e; }
.notice.err { background: #fef2f2; border-color: #fecaca; color: #991b1b; }
.notice.ok { background: #f0fdf4; border-color: #bbf7d0; color: #166534; }
"""
