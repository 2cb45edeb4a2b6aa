"""The web UI (Gradio Blocks) for civil servants, mounted at /ui in the FastAPI app.

Pages call the container's services directly, as the logged-in principal (see ui/auth.py); nothing goes through
HTTP. Pages whose service this build lacks say "功能未启用" instead of failing.

    from ui.app import mount_ui
    mount_ui(app, container)                    # API-key login through the API's key store
    mount_ui(app, container, principal_resolver=lambda user, password: ...)   # plus username/password login

No request leaves the machine when a page loads: system fonts only, analytics off, no share link, no SSR node.
"""
from __future__ import annotations

import logging
import os
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402

from ui.auth import KeyAuthenticator, Login, LoginError, PrincipalResolver  # noqa: E402
from ui.common import ROLE_NAMES, UIContext, esc  # noqa: E402
from ui.session import audit  # noqa: E402
from ui.source_view import SOURCE_VIEW_CSS, SOURCE_VIEW_JS  # noqa: E402
from ui.theme import CSS, build_theme  # noqa: E402
from ui.upload_gate import CLEAR_COOKIE_JS, SET_COOKIE_JS, UploadGate, UploadTickets  # noqa: E402

UI_PATH = "/ui"
_log = logging.getLogger("ui")
TITLE = "政务大模型助手"
HEADER = (f'<div id="app-header"><span class="logo">政</span><h1>{TITLE}</h1>'
          f'<span class="sub">知识库问答 · 公文写作 · 文件摘要 · 评测</span></div>')
LOGIN_INTRO = ("### 登录\n请输入管理员分配给您的 **API 密钥**（与接口调用使用同一密钥）。"
               "登录后，您只能看到和检索有权访问的知识库。")


def _client(request: gr.Request | None) -> str:
    try:
        return request.client.host if request is not None and request.client else ""
    except Exception:  # noqa: BLE001
        return ""


OIDC_BUTTON = ('<a id="login-oidc" href="/auth/oidc/login" class="oidc-login" style="display:inline-block;'
               'padding:.6em 1.4em;border-radius:6px;background:#b91c1c;color:#fff;text-decoration:none;'
               'font-weight:600">统一身份认证登录</a>')
OIDC_DONE_JS = "() => { fetch('/auth/oidc/done', {method: 'POST', credentials: 'same-origin'}); }"


def _oidc_enabled(container: Any) -> bool:
    identity = getattr(getattr(container, "settings", None), "identity", None)
    return bool(getattr(getattr(identity, "oidc", None), "enabled", False))


def _oidc_tickets(container: Any):
    # the container's, in the store every replica shares: the callback may have run on another replica
    return container.oidc_tickets


def _badge(principal) -> str:
    if principal is None:
        return ""
    kbs = "全部" if principal.role == "admin" or "*" in principal.kbs else ("、".join(principal.kbs) or "无")
    return (f"<div id='user-info'>👤 <b>{esc(principal.name)}</b>（{ROLE_NAMES.get(principal.role, principal.role)}）"
            f"<br><span style='color:#64748b'>可访问知识库：{esc(kbs)}</span></div>")


def build_ui(container: Any, principal_resolver: PrincipalResolver | None = None,
             key_authenticator: KeyAuthenticator | None = None, login: Login | None = None) -> gr.Blocks:
    """`login` replaces the default session policy (tests pass one with their own clock)."""
    from ui.pages import access, chat, drafting, evaluation, knowledge, summarize

    login = login or Login(container, principal_resolver, key_authenticator)
    tickets = UploadTickets(login.still_valid)
    # Login.check also says why a session ended (SessionEnded); a substitute policy's own still_valid is kept
    own = getattr(type(login), "still_valid", None) is not Login.still_valid
    check = login.still_valid if own else login.check
    oidc_on = _oidc_enabled(container)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 86400), fill_width=True) as demo:
        demo.upload_tickets = tickets            # mount_ui puts the gate in front of Gradio's upload route
        demo.oidc_tickets = _oidc_tickets(container) if oidc_on else None   # the callback's one-time handover
        principal = gr.State(None)
        ctx = UIContext(container, principal, check)
        with gr.Row(equal_height=True, elem_id="top-bar"):
            gr.HTML(HEADER, elem_id="app-header-wrap")
            badge = gr.HTML("", elem_id="user-badge", min_width=300)
            logout = gr.Button("退出登录", size="sm", visible=False, elem_id="logout", scale=0, min_width=90)

        with gr.Column(visible=True, elem_id="login-box") as login_box:
            gr.Markdown(LOGIN_INTRO)
            gr.HTML(OIDC_BUTTON, visible=oidc_on, elem_id="login-oidc-wrap")
            with gr.Tabs():
                with gr.Tab("API 密钥登录", id="key"):
                    key = gr.Textbox(label="API 密钥", type="password", placeholder="gak_…", elem_id="login-key")
                    key_btn = gr.Button("登录", variant="primary", elem_id="login-key-btn")
                with gr.Tab("用户名密码登录", id="password", visible=login.password_enabled):
                    username = gr.Textbox(label="用户名", elem_id="login-user")
                    password = gr.Textbox(label="密码", type="password", elem_id="login-password")
                    pw_btn = gr.Button("登录", variant="primary", elem_id="login-password-btn")
            login_msg = gr.HTML("", elem_id="login-msg")

        with gr.Column(visible=False, elem_id="main-box") as main_box:
            with gr.Tabs(elem_id="main-tabs"):
                with gr.Tab("问答", id="chat", elem_id="tab-chat"):
                    chat.build(ctx)
                with gr.Tab("知识库", id="kb", elem_id="tab-kb"):
                    knowledge.build(ctx)
                with gr.Tab("公文写作", id="draft", elem_id="tab-draft"):
                    drafting.build(ctx)
                with gr.Tab("摘要", id="summary", elem_id="tab-summary"):
                    summarize.build(ctx)
                with gr.Tab("评测", id="eval", elem_id="tab-eval"):
                    evaluation.build(ctx)
                with gr.Tab("权限", id="access", elem_id="tab-access"):
                    access.build(ctx)

        ticket = gr.Textbox(visible=False, elem_id="upload-ticket")
        logout_to = gr.Textbox(visible=False, elem_id="logout-to")

        def signed_in(p):
            return (p, gr.update(visible=False), gr.update(visible=True), _badge(p), gr.update(visible=True), "",
                    "", "", demo.upload_tickets.issue(p))

        def attempt(how, request, *credentials):
            try:
                p = how(*credentials, _client(request))
            except LoginError as exc:
                audit(container, "-", "ui.login", "denied", request)
                return (gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                        f'<div class="notice err">{esc(exc)}</div>', gr.skip(), gr.skip(), gr.skip())
            audit(container, p, "ui.login", "ok", request)
            return signed_in(p)

        def do_key(secret, request: gr.Request):
            return attempt(login.with_key, request, secret)

        def do_password(user, pw, request: gr.Request):
            return attempt(login.with_password, request, user, pw)

        outputs = [principal, login_box, main_box, badge, logout, login_msg, key, password, ticket]
        for trigger, fn, inputs in ((key_btn.click, do_key, [key]), (key.submit, do_key, [key]),
                                    (pw_btn.click, do_password, [username, password]),
                                    (password.submit, do_password, [username, password])):
            event = ctx.bind(trigger, fn, inputs, outputs, show_progress="minimal")
            # Gradio's upload route needs the login's ticket (ui/upload_gate.py): the browser keeps it as a cookie
            event.then(None, [ticket], None, js=SET_COOKIE_JS, api_visibility="private")
            ctx.logged_in(event)
        if oidc_on:
            # back from /auth/oidc/callback: redeem its one-time ticket (an HttpOnly cookie) once, as this session
            def do_oidc(request: gr.Request):
                from assistant.api.routers.sso import TICKET_COOKIE
                raw = getattr(request, "request", None)
                value = getattr(raw, "cookies", {}).get(TICKET_COOKIE) if raw is not None else None
                if not value:
                    return tuple(gr.skip() for _ in outputs)
                try:
                    ident = demo.oidc_tickets.redeem(value)
                except Exception:  # noqa: BLE001 - the shared store is down: no sign-in (it is logged)
                    _log.exception("could not redeem the OIDC ticket")
                    ident = None
                if ident is None:
                    audit(container, "-", "ui.login", "denied", request)
                    return (*(gr.skip(),) * 5, '<div class="notice err">统一身份认证登录凭据已失效或已使用，请重新登录。</div>',
                            *(gr.skip(),) * 3)
                return attempt(login.with_identity, request, ident)

            event = ctx.bind(demo.load, do_oidc, [], outputs, show_progress="hidden")
            event.then(None, [ticket], None, js=SET_COOKIE_JS, api_visibility="private").then(
                None, js=OIDC_DONE_JS, api_visibility="private")
            ctx.logged_in(event)
        ctx.finish()
        # a fresh page is a fresh session: every page's state (chat history, last answer) goes with it
        def logout_session(p, t):
            demo.upload_tickets.revoke(t)       # this login's uploads end with it (other tabs keep theirs)
            login.end(p)
            # an OIDC session also signs out at the provider (/auth/logout → its end_session_endpoint)
            return None, "", ("/auth/logout" if oidc_on and getattr(p, "source", "") == "oidc" else "")

        ctx.bind(logout.click, logout_session, [principal, ticket], [principal, ticket, logout_to]).then(
            None, [logout_to], None, js="(to) => { " + CLEAR_COOKIE_JS +
            " if (to) { window.location.href = to; } else { window.location.reload(); } }", api_visibility="private")
    return demo


def mount_ui(app, container: Any, path: str = UI_PATH, principal_resolver: PrincipalResolver | None = None,
             key_authenticator: KeyAuthenticator | None = None, login: Login | None = None):
    """Mount the UI into a FastAPI app at `path` and return the app (`login`: tests pass their own policy)."""
    blocks = build_ui(container, principal_resolver, key_authenticator, login)
    app.state.ui_upload_tickets = blocks.upload_tickets
    if blocks.oidc_tickets is not None:
        app.state.oidc_tickets = blocks.oidc_tickets     # /auth/oidc/callback issues, the page redeems
    app.add_middleware(UploadGate, tickets=blocks.upload_tickets, prefix=path)
    max_mb = getattr(getattr(container.settings, "api", None), "max_upload_mb", 50)
    return gr.mount_gradio_app(app, blocks, path=path, footer_links=[], theme=build_theme(),
                               css=CSS + SOURCE_VIEW_CSS, js=SOURCE_VIEW_JS, ssr_mode=False, show_error=True,
                               max_file_size=f"{max_mb}mb", pwa=False, mcp_server=False)


def standalone_app(container: Any, principal_resolver: PrincipalResolver | None = None,
                   key_authenticator: KeyAuthenticator | None = None):
    """A FastAPI app that serves only the UI (for development, or where the API app is not wanted)."""
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse

    app = FastAPI(title=TITLE, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse(UI_PATH + "/")

    return mount_ui(app, container, UI_PATH, principal_resolver, key_authenticator)
