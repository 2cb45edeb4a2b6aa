"""OpenID Connect sign-in (issue #17): a real provider (oidc-provider-mock on 127.0.0.1, see oidc_fixtures.py), the
relying party (assistant/components/identity/oidc.py), the browser flow (/auth/oidc/*, the UI's ticket handover)
and the API's bearer access tokens, JWKS-verified."""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

import httpx
import pytest
from oidc_fixtures import (API_AUDIENCE, CLIENT_ID, EXPIRED_CLIENT, OTHER_CLIENT, Provider,  # noqa: F401
                           audit_rows, oidc_env, provider, site)

from assistant.components.identity.oidc import LoginTickets, OidcClient, OidcError
from assistant.components.identity.once import OneTimeStore
from assistant.services.auth import AuthError
from assistant.services.directory import ExternalIdentity
from assistant.settings import OidcSettings


def client_for(provider, **over) -> OidcClient:
    fields = {"enabled": True, "issuer": provider.url, "client_id": CLIENT_ID, "client_secret": "x",
              "public_url": "http://127.0.0.1:1", "api_audience": API_AUDIENCE, **over}
    return OidcClient(OidcSettings(**fields))


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# -- the verifier against the real provider ------------------------------------------------------------------------

def test_a_provider_signed_access_token_for_our_audience_is_accepted(provider):
    token = provider.tokens("zhangsan")["access_token"]
    ident = client_for(provider).verify_access_token(token)
    assert ident == ExternalIdentity("oidc", "zhangsan", "张三", ("staff",), ("办公室",))
    assert ident.claims["aud"] == API_AUDIENCE


def test_an_access_token_for_another_audience_is_refused(provider):
    token = provider.tokens("zhangsan", client_id=OTHER_CLIENT)["access_token"]
    with pytest.raises(AuthError):
        client_for(provider).verify_access_token(token)


def test_an_expired_provider_signed_access_token_is_refused(provider):
    token = provider.tokens("zhangsan", client_id=EXPIRED_CLIENT)["access_token"]
    with pytest.raises(AuthError):
        client_for(provider).verify_access_token(token)
    # the same token within a leeway that covers its age would pass: it is the expiry that refused it
    assert client_for(provider, leeway_s=600).verify_access_token(token).subject == "zhangsan"


def test_a_token_the_provider_signed_under_another_issuer_name_is_refused(provider):
    # the provider names itself after the Host it is reached by: localhost is not the configured 127.0.0.1
    token = provider.tokens("zhangsan", host=f"localhost:{provider.port}")["access_token"]
    with pytest.raises(AuthError):
        client_for(provider).verify_access_token(token)


def test_a_tampered_token_and_one_signed_by_a_key_the_provider_does_not_publish_are_refused(provider):
    from joserfc import jwk, jwt
    good = provider.tokens("zhangsan")["access_token"]
    header, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged_payload = b64({**claims, "sub": "admin"})
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    own = jwk.RSAKey.generate_key(2048)
    header_kid = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    oc = client_for(provider)
    for bad in (f"{header}.{forged_payload}.{sig}", f"{header}.{payload}.{flipped}",
                jwt.encode({"alg": "RS256", "kid": header_kid}, claims, own),      # the provider's kid, not its key
                jwt.encode({"alg": "RS256", "kid": "unknown"}, claims, own),
                f"{b64({'alg': 'none'})}.{payload}.",
                jwt.encode({"alg": "HS256"}, claims, jwk.OctKey.import_key(b"k" * 32)),
                "opaque-access-token-0123456789", ""):
        with pytest.raises(AuthError):
            oc.verify_access_token(bad)
    assert oc.verify_access_token(good).subject == "zhangsan"


def test_the_id_token_is_checked_for_nonce_audience_and_issuer(provider):
    tokens = provider.tokens("zhangsan", nonce="nonce-A")
    claims = client_for(provider).verify_id_token(tokens["id_token"], "nonce-A")
    assert claims["sub"] == "zhangsan" and claims["aud"] in (CLIENT_ID, [CLIENT_ID])
    with pytest.raises(OidcError):
        client_for(provider).verify_id_token(tokens["id_token"], "nonce-B")          # another login's nonce
    with pytest.raises(OidcError):
        client_for(provider, client_id="someone-else").verify_id_token(tokens["id_token"], "nonce-A")
    wrong_iss = provider.tokens("zhangsan", nonce="nonce-C", host=f"localhost:{provider.port}")["id_token"]
    with pytest.raises(OidcError):
        client_for(provider).verify_id_token(wrong_iss, "nonce-C")
    with pytest.raises(OidcError):                # an access token is not an ID token (aud is the API's)
        client_for(provider).verify_id_token(tokens["access_token"], "nonce-A")


def test_the_provider_redeems_a_code_only_with_the_verifier_of_its_challenge(provider):
    # PKCE end to end: our authorize URL carries the S256 challenge, the provider keeps it with the code, and the
    # token request must bring the verifier (a code intercepted on its way back is useless without it)
    rp = client_for(provider)
    verifier = "v3rifier-" + "0123456789abcdef" * 3
    url = rp.authorization_url("s-0123456789", "n-0123456789", verifier)
    assert "code_challenge_method=S256" in url and "code_challenge=" in url
    code = _authorize(provider, url)["code"]
    with pytest.raises(OidcError, match="拒绝了本次登录"):
        rp.exchange_code(code, "another-verifier-" + "0123456789abcdef" * 3)
    code = _authorize(provider, rp.authorization_url("s-0123456789", "n-0123456789", verifier))["code"]
    assert rp.exchange_code(code, verifier)["id_token"]


def test_an_unreachable_provider_is_a_clear_error():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    oc = OidcClient(OidcSettings(enabled=True, issuer=f"http://127.0.0.1:{port}", client_id="c", timeout_s=2,
                                 public_url="http://127.0.0.1:1", api_audience="a"))
    with pytest.raises(OidcError, match="无法连接"):
        oc.authorization_url("s", "n", "v" * 43)
    with pytest.raises(AuthError):
        oc.verify_access_token("a.b.c")


def test_login_tickets_are_single_use_and_expire(tmp_path):
    now = [0.0]
    t = LoginTickets(OneTimeStore(tmp_path / "sso.sqlite3", clock=lambda: now[0]), ttl_s=60)
    ident = ExternalIdentity("oidc", "zhangsan", "张三", ("staff",), ("办公室",),
                             {"sub": "zhangsan", "aud": ["a"]})
    a, b = t.issue(ident), t.issue(ident)
    back = t.redeem(a)
    assert back == ident and back.claims == ident.claims and t.redeem(a) is None    # replayed
    now[0] = 61
    assert t.redeem(b) is None                                     # expired
    assert t.redeem("forged") is None and t.redeem(None) is None


# -- the API with bearer tokens ------------------------------------------------------------------------------------

def test_the_api_takes_a_provider_access_token_for_a_mapped_user(site):
    token = site.provider.tokens("zhangsan")["access_token"]
    r = httpx.get(site.server.url + "/api/v1/kbs", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    names = {kb["name"] for kb in r.json()["knowledge_bases"]} if "knowledge_bases" in r.json() else \
        {kb["name"] for kb in r.json()}
    assert names == {"open"}
    assert audit_rows(site.container, "oidc:zhangsan")[-1]["path"] == "/api/v1/kbs"
    for bad in (token[:-4] + "AAAA", site.provider.tokens("zhangsan", client_id=OTHER_CLIENT)["access_token"],
                site.provider.tokens("zhangsan", client_id=EXPIRED_CLIENT)["access_token"], "not-a-token"):
        r = httpx.get(site.server.url + "/api/v1/kbs", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, r.text
        assert "Traceback" not in r.text and bad not in r.text


# -- the callback's refusals (no browser needed) -------------------------------------------------------------------

def test_a_callback_without_the_login_cookie_or_with_another_state_is_refused(site):
    base = site.server.url
    r = httpx.get(base + "/auth/oidc/callback", params={"state": "x", "code": "y"})
    assert r.status_code == 400 and "登录请求已过期或无效" in r.text and "Traceback" not in r.text
    with httpx.Client(base_url=base) as http:
        r = http.get("/auth/oidc/login")
        assert r.status_code == 302 and r.headers["location"].startswith(site.provider.url + "/oauth2/authorize")
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/auth/oidc" in cookie
        assert "code_challenge_method=S256" in r.headers["location"]
        r = http.get("/auth/oidc/callback", params={"state": "another-state", "code": "y"})
        assert r.status_code == 400 and "state 不一致" in r.text
    rows = audit_rows(site.container)
    assert rows[-1]["operation"] == "ui.login.oidc" and rows[-1]["outcome"] == "denied"


def test_the_routes_say_so_when_oidc_is_off(tmp_path):
    from fastapi.testclient import TestClient
    from identity_fixtures import make_container
    from assistant.api.app import create_app
    c = make_container(tmp_path / "data")
    with TestClient(create_app(c), follow_redirects=False) as http:
        r = http.get("/auth/oidc/login")
        assert r.status_code == 404 and "未启用统一身份认证" in r.text
        assert 'id="login-oidc"' not in http.get("/ui/").text


# -- replicas: states and tickets in the store they share ----------------------------------------------------

@dataclass
class Replica:
    container: object
    http: object
    tickets: LoginTickets


@pytest.fixture(params=["sqlite", "postgresql"])
def replicas(request, provider, tmp_path, monkeypatch):
    """Two app instances over one store: the SQLite file of one data_dir (two processes on a host), or one
    PostgreSQL database (the scale-out profile: each replica its own data_dir and the session secret from the
    environment, as on separate hosts)."""
    from fastapi.testclient import TestClient
    from identity_fixtures import make_container
    from assistant.api.app import create_app
    from assistant.api.routers.sso import ENV_SECRET
    monkeypatch.setenv(ENV_SECRET, "replicas-share-this-secret-0123456789")
    if request.param == "sqlite":
        dirs, extra = [tmp_path / "data"] * 2, {}
    else:
        import pg_fixtures
        if pg_fixtures.pg_bin() is None:
            pytest.skip("PostgreSQL is not installed (make install-test installs it)")
        dirs = [tmp_path / "a", tmp_path / "b"]
        extra = {"GOV_ASSISTANT_DATABASE__URL": pg_fixtures.session_server().new_database()}
    out = []
    for d in dirs:
        c = make_container(d, **oidc_env(provider, "http://127.0.0.1:1"), **extra)
        app = create_app(c)
        out.append(Replica(c, TestClient(app, follow_redirects=False), app.state.oidc_tickets))
    assert out[0].container.sso_once is not out[1].container.sso_once
    yield out
    for r in out:
        r.http.close()


def _authorize(provider, location: str, sub: str = "zhangsan") -> dict:
    """What the provider sends the browser back with (the authorize form's POST): the callback's query."""
    from urllib.parse import parse_qsl, urlparse
    params = dict(parse_qsl(urlparse(location).query))
    r = httpx.post(provider.url + "/oauth2/authorize", params=params, data={"sub": sub}, timeout=10)
    assert r.status_code == 302, r.text[:300]
    return dict(parse_qsl(urlparse(r.headers["location"]).query))


def test_a_callback_and_its_ticket_are_accepted_on_another_replica_and_a_replay_on_either_is_refused(
        replicas, provider):
    from assistant.api.routers.sso import LOGIN_COOKIE, TICKET_COOKIE
    a, b = replicas
    r = a.http.get("/auth/oidc/login")
    assert r.status_code == 302
    cookie = {"Cookie": f"{LOGIN_COOKIE}={r.cookies[LOGIN_COOKIE]}"}
    query = _authorize(provider, r.headers["location"])
    r = b.http.get("/auth/oidc/callback", params=query, headers=cookie)     # the callback lands on replica b
    assert r.status_code == 302 and r.headers["location"] == "/ui/", r.text[:300]
    ticket = r.cookies[TICKET_COOKIE]
    for replica in (b, a):                                                  # the same callback, anywhere
        r = replica.http.get("/auth/oidc/callback", params=query, headers=cookie)
        assert r.status_code == 400 and "已使用过" in r.text and "Traceback" not in r.text
    ident = a.tickets.redeem(ticket)                                        # the page loads on replica a
    assert ident is not None and ident.principal_id == "oidc:zhangsan" and ident.name == "张三"
    assert a.container.principals.from_identity(ident).kbs == ()            # nothing granted in this store
    assert a.tickets.redeem(ticket) is None and b.tickets.redeem(ticket) is None   # spent for both
    outcomes = [e["outcome"] for e in a.container.audit.tail(50) if e["operation"] == "ui.login.oidc"]
    assert outcomes == ["ok", "denied", "denied"]                           # one audit log for both replicas


def test_replicas_racing_for_one_ticket_get_it_once(replicas):
    import threading
    a, b = replicas
    ident = ExternalIdentity("oidc", "zhangsan", "张三", ("staff",), ("办公室",))
    for _ in range(3):
        ticket = a.tickets.issue(ident)
        barrier, got = threading.Barrier(8), []
        def grab(tickets):
            barrier.wait()
            got.append(tickets.redeem(ticket))
        threads = [threading.Thread(target=grab, args=(r.tickets,)) for r in (a, b) * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(got) == 8 and [g for g in got if g is not None] == [ident]


def test_expired_values_are_purged_and_only_hashes_are_stored(tmp_path):
    now = [0.0]
    store = OneTimeStore(tmp_path / "sso.sqlite3", clock=lambda: now[0])
    store.put("oidc_state", "state-A", {}, 600)
    store.put("ui_ticket", "ticket-B", {"x": 1}, 60)
    now[0] = 61
    store.put("ui_ticket", "ticket-C", {"x": 2}, 60)                        # a put purges what has expired
    rows = [dict(r) for r in store._db.execute("SELECT * FROM sso_once ORDER BY kind")]
    assert [r["kind"] for r in rows] == ["oidc_state", "ui_ticket"]
    assert not any(v in str(rows) for v in ("state-A", "ticket-B", "ticket-C"))
    assert store.take("ui_ticket", "ticket-B") is None and store.take("ui_ticket", "ticket-C") == {"x": 2}
    assert store.take("oidc_state", "state-A") == {} and store.take("oidc_state", "state-A") is None
    assert store.take("ui_ticket", "state-A") is None                       # kinds are apart


# -- sessions: idle and absolute timeouts for an OIDC identity ------------------------------------------------------

def test_an_oidc_ui_session_ends_after_the_idle_and_the_absolute_timeout(site):
    from identity_fixtures import Clock
    from ui.auth import Login
    clock = Clock()
    login = Login(site.container, clock=clock)
    ident = ExternalIdentity("oidc", "zhangsan", "张三", ("staff",), ("办公室",))
    p = login.with_identity(ident)
    assert p.id == "oidc:zhangsan" and p.kbs == ("open",) and login.still_valid(p)
    clock.advance(login.idle_s + 1)
    assert not login.still_valid(p)                                   # idle too long
    p = login.with_identity(ident)
    for _ in range(int(login.max_s // (login.idle_s - 1)) + 1):       # always busy, but past the absolute limit
        clock.advance(login.idle_s - 1)
        alive = login.still_valid(p)
    assert not alive



def test_logout_ends_the_oidc_session_on_the_server_and_points_to_the_providers_logout(site):
    from identity_fixtures import build
    ui = build(site.container)
    p = ui.login.with_identity(ExternalIdentity("oidc", "zhangsan", "张三", ("staff",), ("办公室",)))
    assert ui.login.still_valid(p)
    out = ui.call("ui.app.logout_session", p, "")
    assert out[0] is None and out[2] == "/auth/logout"
    assert not ui.login.still_valid(p)                                # the principal in an old tab is dead too
    r = httpx.get(site.server.url + "/auth/logout")
    assert r.status_code == 302 and r.headers["location"].startswith(site.provider.url + "/oauth2/end_session?")
    assert "post_logout_redirect_uri=" in r.headers["location"]

# -- the browser flow (headless Chromium) ----------------------------------------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    import os
    from pathlib import Path
    chromium = os.environ.get("GOV_ASSISTANT_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.fail(f"{chromium} not found (set GOV_ASSISTANT_CHROMIUM to use another build)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def sign_in(browser, site, sub: str = "zhangsan"):
    """/ui → 统一身份认证登录 → the provider's authorize form → back in the UI. Returns (context, page, callback url)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(30_000)
    callbacks: list[str] = []
    page.on("request", lambda req: callbacks.append(req.url) if "/auth/oidc/callback" in req.url else None)
    page.goto(site.server.url + "/ui/")
    page.click("#login-oidc")
    page.wait_for_url(site.provider.url + "/oauth2/authorize*")
    page.fill("input[name=sub]", sub)
    page.click("button[type=submit]:has-text('Authorize')")
    page.wait_for_url(site.server.url + "/ui/*")
    return context, page, callbacks


@pytest.mark.browser
def test_signing_in_through_the_provider_in_the_browser_and_out_again(browser, site):
    context, page, callbacks = sign_in(browser, site)
    try:
        page.wait_for_selector("#main-box", state="visible")
        badge = page.inner_text("#user-info")
        assert "张三" in badge and "open" in badge and "closed" not in badge
        page.locator("#chat-kb input").click()
        options = " ".join(page.get_by_role("option").all_inner_texts())
        page.keyboard.press("Escape")
        assert "open" in options and "closed" not in options
        rows = [r for r in audit_rows(site.container, "oidc:zhangsan") if r["operation"] in ("ui.login", "ui.login.oidc")]
        assert [r["outcome"] for r in rows[-2:]] == ["ok", "ok"]
        try:
            from pathlib import Path
            from assistant.settings import PROJECT_ROOT
            shots = Path(PROJECT_ROOT) / "docs" / "screenshots"
            shots.mkdir(parents=True, exist_ok=True)
            time.sleep(0.5)
            page.screenshot(path=str(shots / "sso-login.png"))
        except Exception:  # noqa: BLE001 - a screenshot is a nicety
            pass
        # the cookie the handover used is cleared, and the ticket in it is spent
        assert not [c for c in context.cookies() if c["name"] == "gov_oidc_ticket"]

        # a replayed callback URL is refused (its state is spent, its code used), with a page, not a traceback
        replay = context.new_page()
        replay.goto(callbacks[0])
        assert "登录未完成" in replay.inner_text("body") and "Traceback" not in replay.content()
        replay.close()

        page.click("#logout")
        page.wait_for_url(site.provider.url + "/oauth2/end_session*")       # RP-initiated logout at the provider
        page.get_by_role("button").first.click()
        page.wait_for_url(site.server.url + "/ui/*")
        page.wait_for_selector("#login-oidc")
        assert page.locator("#main-box").is_hidden()
    finally:
        context.close()


@pytest.mark.browser
def test_a_replayed_ticket_and_a_state_mismatch_are_refused_in_the_browser(browser, site):
    # catch the ticket the callback sets, before the page spends it
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    tickets: list[str] = []

    def on_response(resp):
        if "/auth/oidc/callback" in resp.url:
            cookie = resp.header_value("set-cookie") or ""     # .headers leaves cookies out
            tickets.extend(part.split("=", 1)[1].split(";")[0] for part in cookie.split("\n")
                           if part.startswith("gov_oidc_ticket="))
    page.on("response", on_response)
    try:
        page.goto(site.server.url + "/ui/")
        page.click("#login-oidc")
        page.wait_for_url(site.provider.url + "/oauth2/authorize*")
        page.fill("input[name=sub]", "zhangsan")
        page.click("button[type=submit]:has-text('Authorize')")
        page.wait_for_selector("#main-box", state="visible")
        assert tickets and tickets[0]
    finally:
        context.close()

    # another browser presenting the spent ticket gets the login page and a refusal
    thief = browser.new_context()
    thief.add_cookies([{"name": "gov_oidc_ticket", "value": tickets[0], "url": site.server.url + "/ui/"}])
    page = thief.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(site.server.url + "/ui/")
        page.get_by_text("统一身份认证登录凭据已失效或已使用").wait_for()
        assert page.locator("#main-box").is_hidden()

        # state mismatch: the provider's answer carries another state than this browser's login cookie
        page.click("#login-oidc")
        page.wait_for_url(site.provider.url + "/oauth2/authorize*")
        forged = page.url.replace("state=", "state=forged")
        page.goto(forged)
        page.fill("input[name=sub]", "zhangsan")
        page.click("button[type=submit]:has-text('Authorize')")
        page.wait_for_selector("#sso-error")
        assert "state 不一致" in page.inner_text("#sso-error")
        page.goto(site.server.url + "/ui/")
        page.wait_for_selector("#login-oidc")
        assert page.locator("#main-box").is_hidden()
    finally:
        thief.close()
