"""权限: who the signed-in person is (role, departments, groups, readable knowledge bases, document levels) and,
for admins, the directory's mapping rules, knowledge-base grants and a document's sensitivity level. Changes go
through AccessAdminService (admins only, audited with the acting id and what changed)."""
from __future__ import annotations

import gradio as gr

from assistant.services.directory import GRANT_KINDS, RULE_KINDS, describe
from ui.common import ROLE_NAMES, Refresher, UIContext, denied, esc, friendly, note, notice

RULE_HEADERS = ["编号", "类型", "匹配", "角色", "部门", "密级上限", "设置人"]
GRANT_HEADERS = ["知识库", "授予对象类型", "对象", "权限", "设置人"]
KIND_NAMES = {"user": "用户", "group": "组", "department": "部门", "claim": "声明(claim=值)", "key": "API 密钥"}


def me_html(principal, levels: tuple[str, ...]) -> str:
    d = describe(principal)
    visible = "全部" if "*" in d["levels"] else ("、".join(d["levels"]) or "无")
    rows = [("身份标识", d["id"]), ("来源", d["source"]), ("角色", ROLE_NAMES.get(d["role"], d["role"])),
            ("部门", "、".join(d["departments"]) or "—"), ("组", "、".join(d["groups"]) or "—"),
            ("可读知识库", "全部" if "*" in d["kbs"] or d["role"] == "admin" else ("、".join(d["kbs"]) or "无")),
            ("可见密级", visible)]
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="me-table">{body}</table><div class="ai-note">密级由低到高：{esc(" < ".join(levels))}</div>'


def build(ctx: UIContext) -> None:
    c = ctx.container
    levels = tuple(c.classification.levels)
    me = gr.HTML("", elem_id="access-me")
    with gr.Column(visible=False, elem_id="access-admin") as admin_box:
        gr.Markdown("#### 映射规则：目录中的用户、组、部门或声明 → 角色、部门、密级上限（多条规则取最高者）")
        rules = gr.Dataframe(headers=RULE_HEADERS, value=[], interactive=False, wrap=True, max_height=260,
                             elem_id="access-rules")
        with gr.Row():
            r_kind = gr.Dropdown(label="类型", choices=[(KIND_NAMES[k], k) for k in RULE_KINDS], value="group",
                                 scale=1)
            r_match = gr.Textbox(label="匹配", placeholder="如 cn=editors,ou=groups,dc=example,dc=gov 或 dept=办公室",
                                 scale=3, elem_id="access-rule-match")
            r_role = gr.Dropdown(label="角色", choices=[("（不变）", ""), *[(v, k) for k, v in ROLE_NAMES.items()]],
                                 value="", scale=1)
            r_dept = gr.Textbox(label="部门", scale=1)
            r_clear = gr.Dropdown(label="密级上限", choices=[("（不变）", ""), *levels], value="", scale=1)
        with gr.Row():
            r_add = gr.Button("添加规则", variant="primary", size="sm", elem_id="access-rule-add")
            r_id = gr.Number(label="规则编号", value=None, precision=0, minimum=1, scale=0, min_width=120)
            r_del = gr.Button("删除规则", variant="stop", size="sm")
        gr.Markdown("#### 知识库授权：部门、组、用户或 API 密钥可读（或可写）某知识库")
        grants = gr.Dataframe(headers=GRANT_HEADERS, value=[], interactive=False, wrap=True, max_height=260,
                              elem_id="access-grants")
        with gr.Row():
            g_kb = gr.Textbox(label="知识库", scale=1, elem_id="access-grant-kb")
            g_kind = gr.Dropdown(label="对象类型", choices=[(KIND_NAMES[k], k) for k in GRANT_KINDS],
                                 value="department", scale=1)
            g_subject = gr.Textbox(label="对象", placeholder="部门名、组、用户标识（oidc:…/ldap:…）或密钥编号 k_…",
                                   scale=3, elem_id="access-grant-subject")
            g_access = gr.Radio([("只读", "read"), ("读写", "write")], value="read", label="权限", scale=1)
        with gr.Row():
            g_add = gr.Button("授权", variant="primary", size="sm", elem_id="access-grant-add")
            g_del = gr.Button("撤销授权", variant="stop", size="sm")
        gr.Markdown("#### 文档密级（数据分类分级）：修改后立即对检索、问答、文档列表和原文查看生效")
        with gr.Row():
            s_kb = gr.Textbox(label="知识库", scale=1, elem_id="access-doc-kb")
            s_doc = gr.Textbox(label="文档编号 doc_id", scale=3, elem_id="access-doc")
            s_level = gr.Dropdown(label="密级", choices=list(levels), value=c.settings.classification.default_level,
                                  scale=1, elem_id="access-level")
            s_set = gr.Button("设置密级", variant="primary", size="sm", scale=0, min_width=100,
                              elem_id="access-set-level")
    msg = gr.HTML("", elem_id="access-msg")
    admin = c.access_admin

    # -- handlers ------------------------------------------------------------------------------------------------
    def tables(principal):
        rule_rows = [[r["id"], KIND_NAMES.get(r["kind"], r["kind"]), r["match"],
                      ROLE_NAMES.get(r["role"], r["role"] or ""), r["department"] or "", r["clearance"] or "",
                      r["created_by"]] for r in admin.rules(principal=principal)]
        grant_rows = [[g["kb"], KIND_NAMES.get(g["kind"], g["kind"]), g["subject"],
                       "读写" if g["access"] == "write" else "只读", g["created_by"]]
                      for g in admin.grants(principal=principal)]
        return rule_rows, grant_rows

    def show(principal):
        is_admin = principal.role == "admin"
        rule_rows, grant_rows = tables(principal) if is_admin else ([], [])
        return me_html(principal, levels), gr.update(visible=is_admin), rule_rows, grant_rows

    def change(principal, what, fn):
        if principal.role != "admin":
            raise denied("只有管理员可以修改权限设置。")
        try:
            fn()
        except (ValueError, PermissionError, LookupError) as exc:
            note(outcome="rejected")
            return gr.skip(), gr.skip(), f'<div class="notice err">⚠️ {esc(friendly(exc))}</div>'
        rule_rows, grant_rows = tables(principal)
        return rule_rows, grant_rows, notice(f"已{what}。")

    def add_rule(principal, kind, match, role, dept, clearance):
        return change(principal, "添加规则", lambda: admin.add_rule(
            kind, match, role=role or None, department=dept or None, clearance=clearance or None,
            principal=principal, channel="UI"))

    def remove_rule(principal, rule_id):
        return change(principal, "删除规则", lambda: admin.remove_rule(int(rule_id or 0), principal=principal,
                                                                    channel="UI"))

    def add_grant(principal, kb, kind, subject, access):
        note(kb=kb)
        return change(principal, "授权", lambda: admin.grant((kb or "").strip(), kind, subject, access,
                                                           principal=principal, channel="UI"))

    def remove_grant(principal, kb, kind, subject):
        note(kb=kb)
        return change(principal, "撤销授权", lambda: admin.revoke((kb or "").strip(), kind, (subject or "").strip(),
                                                              principal=principal, channel="UI"))

    def set_level(principal, kb, doc_id, level):
        note(kb=kb)
        return change(principal, f"将文档设为「{level}」", lambda: admin.set_sensitivity(
            (kb or "").strip(), (doc_id or "").strip(), level, principal=principal, channel="UI"))

    outs = [rules, grants, msg]
    ctx.bind(r_add.click, add_rule, [ctx.principal, r_kind, r_match, r_role, r_dept, r_clear], outs)
    ctx.bind(r_del.click, remove_rule, [ctx.principal, r_id], outs)
    ctx.bind(g_add.click, add_grant, [ctx.principal, g_kb, g_kind, g_subject, g_access], outs)
    ctx.bind(g_del.click, remove_grant, [ctx.principal, g_kb, g_kind, g_subject], outs)
    ctx.bind(s_set.click, set_level, [ctx.principal, s_kb, s_doc, s_level], outs)
    ctx.on_login.append(Refresher(show, [me, admin_box, rules, grants]))
