"""OpenID Connect sign-in for the web UI (identity.oidc; see docs/security/identity.md "OIDC sign-in").

    GET  /auth/oidc/login     → 302 to the provider (authorization code + PKCE S256, state, nonce)
    GET  /auth/oidc/callback  → state checked against the signed login cookie (CSRF), code exchanged, ID token
                                verified (JWKS signature, iss, aud, exp, nonce); a one-time ticket → 302 /ui/
    POST /auth/oidc/done      ← the UI, after redeeming the ticket: the ticket cookie is cleared
    GET  /auth/logout         → cookies cleared; 302 to the provider's end_session_endpoint (or /ui/)

These are outside /api and /v1, so no API key is asked for; they never show a token or a traceback.

The login cookie (`gov_oidc_login`: state, nonce, PKCE verifier) is signed with the server's session secret
(GOV_ASSISTANT_SESSION_SECRET, else a random one kept in <data_dir>/session_secret, mode 0600), HttpOnly,
SameSite=Lax, path /auth/oidc, ten minutes. The state is also put into the shared one-time store
(container.sso_once, in the deployment's database, so the callback may land on any replica) and the callback
takes it out: it is accepted once. The ticket cookie (`gov_oidc_ticket`) holds only a random ticket that store
maps to the verified identity for 60 s, once (ui/app.py redeems it, on whichever replica serves the page).
"""
from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from assistant.api.deps import get_container

log = logging.getLogger("assistant.api.sso")
router = APIRouter(tags=["sso"], include_in_schema=False)

LOGIN_COOKIE = "gov_oidc_login"
TICKET_COOKIE = "gov_oidc_ticket"
LOGIN_MAX_AGE_S = 600
TICKET_TTL_S = 60
ENV_SECRET = "GOV_ASSISTANT_SESSION_SECRET"
UI_PATH = "/ui"
STATE_KIND = "oidc_state"

_secret_lock = threading.Lock()


def session_secret(data_dir: str | Path) -> bytes:
    """The key that signs the login cookie: from the environment, else a random one made once under data_dir."""
    env = os.environ.get(ENV_SECRET)
    if env:
        return env.encode()
    path = Path(data_dir) / "session_secret"
    with _secret_lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        return path.read_bytes().strip()


def _serializer(container):
    from itsdangerous import URLSafeTimedSerializer
    return URLSafeTimedSerializer(session_secret(container.settings.data_dir), salt="gov-assistant.oidc-login")


def _page(status: int, message: str) -> HTMLResponse:
    from html import escape
    body = (f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>统一身份认证登录</title></head>"
            f"<body style='font-family:sans-serif;max-width:40em;margin:4em auto'><h1>登录未完成</h1>"
            f"<p id='sso-error'>{escape(message)}</p><p><a href='{UI_PATH}/'>返回登录页</a></p></body></html>")
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _secure(container) -> bool:
    return str(container.settings.identity.oidc.public_url or "").startswith("https://")


def _audit(container, principal: str, outcome: str, request: Request, reason: str = "") -> None:
    """One audit row per callback (ui.login.oidc ok / denied); the reason of a refusal goes to the log."""
    if reason and outcome != "ok":
        log.info("OIDC callback refused: %s", reason)
    try:
        container.audit.record(principal=principal[:128], operation="ui.login.oidc", outcome=outcome,
                               client_ip=request.client.host if request.client else None, method=request.method,
                               path=request.url.path)
    except Exception:  # noqa: BLE001 - auditing never breaks the sign-in
        log.exception("audit record failed for ui.login.oidc")


@router.get("/auth/oidc/login")
def oidc_login(request: Request):
    container = get_container(request)
    oidc = container.oidc
    if oidc is None:
        return _page(404, "本系统未启用统一身份认证登录。")
    from authlib.common.security import generate_token
    from assistant.components.identity.oidc import OidcError
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    try:
        url = oidc.authorization_url(state, nonce, verifier)
    except OidcError as exc:
        return _page(502, str(exc))
    try:
        container.sso_once.put(STATE_KIND, state, {}, LOGIN_MAX_AGE_S)
    except Exception:  # noqa: BLE001 - the shared database is down: no login that could not be finished
        log.exception("could not store the OIDC state")
        return _page(503, "登录服务暂时不可用，请稍后再试。")
    response = RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    response.set_cookie(LOGIN_COOKIE, _serializer(container).dumps({"s": state, "n": nonce, "v": verifier}),
                        max_age=LOGIN_MAX_AGE_S, path="/auth/oidc", httponly=True, samesite="lax",
                        secure=_secure(container))
    return response


@router.get("/auth/oidc/callback")
def oidc_callback(request: Request):
    container = get_container(request)
    oidc = container.oidc
    if oidc is None:
        return _page(404, "本系统未启用统一身份认证登录。")
    from itsdangerous import BadSignature
    from assistant.components.identity.oidc import OidcError

    def refuse(status: int, message: str, reason: str, who: str = "-") -> HTMLResponse:
        _audit(container, who, "denied", request, reason=reason)
        response = _page(status, message)
        response.delete_cookie(LOGIN_COOKIE, path="/auth/oidc")
        return response

    q = request.query_params
    if q.get("error"):
        return refuse(400, "统一身份认证服务未完成登录（已取消或被拒绝）。", "provider: " + q.get("error", "")[:64])
    try:
        login = _serializer(container).loads(request.cookies.get(LOGIN_COOKIE, ""), max_age=LOGIN_MAX_AGE_S)
    except BadSignature:    # missing, forged or older than ten minutes
        return refuse(400, "登录请求已过期或无效（请从本系统的登录页发起登录）。", "no valid login cookie")
    state, code = q.get("state", ""), q.get("code", "")
    if not state or not hmac.compare_digest(str(login.get("s", "")), state):
        return refuse(400, "登录请求校验失败（state 不一致），请重新登录。", "state mismatch")
    if not code:
        return refuse(400, "统一身份认证服务未返回授权码。", "no code")
    try:   # spent here, atomically: a replay on this or any other replica finds nothing
        issued = container.sso_once.take(STATE_KIND, state)
    except Exception:  # noqa: BLE001 - fail closed when the shared database is down
        log.exception("could not check the OIDC state")
        return refuse(503, "登录服务暂时不可用，请稍后再试。", "state store unavailable")
    if issued is None:
        return refuse(400, "该登录链接已使用过或已过期，请重新登录。", "state replayed or expired")
    try:
        tokens = oidc.exchange_code(code, login["v"])
        claims = oidc.verify_id_token(tokens["id_token"], login["n"])
    except OidcError as exc:
        log.warning("OIDC sign-in refused: %s", exc)
        msg = str(exc) if not str(exc).startswith("token refused") else "统一身份认证服务返回的身份令牌未通过校验。"
        return refuse(400, msg, str(exc)[:120])
    ident = oidc.identity(claims)
    tickets = getattr(request.app.state, "oidc_tickets", None)
    if tickets is None:
        return refuse(404, "本系统未启用网页界面。", "no ui", ident.principal_id)
    try:
        ticket = tickets.issue(ident)
    except Exception:  # noqa: BLE001 - the shared database is down
        log.exception("could not store the OIDC ticket")
        return refuse(503, "登录服务暂时不可用，请稍后再试。", "ticket store unavailable", ident.principal_id)
    _audit(container, ident.principal_id, "ok", request)
    response = RedirectResponse(UI_PATH + "/", status_code=302, headers={"Cache-Control": "no-store"})
    response.delete_cookie(LOGIN_COOKIE, path="/auth/oidc")
    response.set_cookie(TICKET_COOKIE, ticket, max_age=TICKET_TTL_S, path=UI_PATH, httponly=True,
                        samesite="lax", secure=_secure(container))
    return response


@router.post("/auth/oidc/done")
def oidc_done(request: Request):
    """The UI redeemed its ticket: the (now useless) cookie goes."""
    response = Response(status_code=204)
    response.delete_cookie(TICKET_COOKIE, path=UI_PATH)
    return response


@router.get("/auth/logout")
def logout(request: Request):
    """After the UI ended its session: cookies cleared, then the provider's logout where it has one."""
    container = get_container(request)
    oidc = container.oidc
    target = UI_PATH + "/"
    if oidc is not None:
        public = (container.settings.identity.oidc.public_url or "").rstrip("/")
        target = oidc.end_session_url(public + UI_PATH + "/" if public else None) or target
    response = RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})
    response.delete_cookie(TICKET_COOKIE, path=UI_PATH)
    response.delete_cookie(LOGIN_COOKIE, path="/auth/oidc")
    return response
