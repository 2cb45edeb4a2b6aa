"""A real OpenID provider for the OIDC tests: oidc-provider-mock (authlib's authorization server under Flask) on
127.0.0.1, a free port, in a thread; the app under test (create_app with the UI) under uvicorn next to it.

oidc-provider-mock issues *opaque* access tokens by default (authlib's random string; only its own /userinfo knows
them). An API that accepts "the provider's bearer access tokens, JWKS-verified" needs JWT access tokens (RFC 9068:
what Keycloak, Azure AD, ADFS issue), so the provider here is configured through authlib's own hook
(OAUTH2_ACCESS_TOKEN_GENERATOR) to issue them, signed with the provider's own JWKS key and issuer. Its policy per
client id: `aud` is AUDIENCES[client_id] (else the client id), and the client EXPIRED_CLIENT gets tokens whose
`exp` already passed — still signed by the provider, so expiry is checked on a genuine token. ID tokens are the
mock's own (authlib OpenIDCode: iss, aud=client_id, nonce, exp). PKCE is enforced (_pkce_grant)."""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from app_server import ServerThread

CLIENT_ID = "gov-assistant"
CLIENT_SECRET = "oidc-test-client-secret"
API_AUDIENCE = "gov-assistant-api"
OTHER_CLIENT = "other-app"              # its access tokens are for another API
EXPIRED_CLIENT = "expired-app"          # its access tokens are for our API but expired two minutes ago
AUDIENCES = {CLIENT_ID: API_AUDIENCE, OTHER_CLIENT: "other-api", EXPIRED_CLIENT: API_AUDIENCE}
USERS = {"zhangsan": {"name": "张三", "department": "办公室", "groups": ["staff"], "email": "zhangsan@example.gov"},
         "lisi": {"name": "李四", "department": "财政局", "groups": ["staff"], "email": "lisi@example.gov"}}


def _access_token(client, grant_type, user, scope):
    """authlib's access-token generator hook, inside the provider's request: an RFC 9068 JWT, provider-signed."""
    import flask
    from joserfc import jwk, jwt
    from oidc_provider_mock._storage import storage
    now = int(time.time())
    exp = now - 120 if client.id == EXPIRED_CLIENT else now + 3600
    claims = {**user.claims, "iss": flask.request.host_url.rstrip("/"), "sub": user.sub,
              "aud": AUDIENCES.get(client.id, client.id), "client_id": client.id, "scope": scope or "",
              "iat": now, "exp": exp, "jti": f"at-{now}-{id(user)}"}
    key = jwk.import_key(storage.jwk.as_dict(is_private=True))
    return jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, claims, key)


def _pkce_grant():
    """The mock's authorization-code grant with authlib's own PKCE extension (RFC 7636), which the mock does not
    register: the challenge of each authorize request is kept with its code, and a token request for that code must
    bring the matching verifier, as at a real provider. Without it a client sending a wrong verifier would pass."""
    from authlib.oauth2.rfc7636 import CodeChallenge
    from oidc_provider_mock import _app

    challenges: dict[str, tuple[str | None, str | None]] = {}

    class Challenge(CodeChallenge):
        def get_authorization_code_challenge(self, authorization_code):
            return challenges.get(authorization_code.code, (None, None))[0]

        def get_authorization_code_challenge_method(self, authorization_code):
            return challenges.get(authorization_code.code, (None, None))[1]

    class Grant(_app.AuthorizationCodeGrant):
        def __init__(self, request, server):
            super().__init__(request, server)
            Challenge(required=True)(self)

        def save_authorization_code(self, code, request):
            super().save_authorization_code(code, request)
            data = request.payload.data
            challenges[code] = (data.get("code_challenge"), data.get("code_challenge_method"))

    return Grant


class Provider:
    """oidc-provider-mock on 127.0.0.1 in a thread (werkzeug's threaded server, as its run_server_in_thread)."""

    def __init__(self):
        import flask
        import werkzeug.serving
        from oidc_provider_mock import User, init_app
        app = flask.Flask("oidc_provider_mock._app")   # its templates live in that package
        app.secret_key = "oidc-test-provider"
        app.config["OAUTH2_ACCESS_TOKEN_GENERATOR"] = _access_token
        from oidc_provider_mock import _app
        mock_grant, _app.AuthorizationCodeGrant = _app.AuthorizationCodeGrant, _pkce_grant()
        try:     # init_app registers the module's grant class, read at this call
            init_app(app, require_nonce=True,
                     user_claims=[User(sub=sub, claims=claims) for sub, claims in USERS.items()])
        finally:
            _app.AuthorizationCodeGrant = mock_grant
        self.server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()

    def tokens(self, sub: str = "zhangsan", client_id: str = CLIENT_ID, nonce: str = "n-0123456789",
               host: str | None = None, redirect_uri: str = "http://127.0.0.1:1/cb") -> dict:
        """The token response of a whole authorization-code flow done without a browser (the form POST the
        authorize page sends). `host`: the Host the provider sees, which it makes the tokens' issuer."""
        headers = {"Host": host} if host else {}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as http:
            r = http.post("/oauth2/authorize", params={
                "client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
                "scope": "openid profile email", "state": "s-0123456789", "nonce": nonce}, data={"sub": sub})
            assert r.status_code == 302, r.text[:500]
            code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
            r = http.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": redirect_uri},
                          auth=(client_id, CLIENT_SECRET))
            assert r.status_code == 200, r.text[:500]
            return r.json()


def oidc_env(provider: Provider, public_url: str, **extra: str) -> dict[str, str]:
    env = {"GOV_ASSISTANT_IDENTITY__OIDC__ENABLED": "true", "GOV_ASSISTANT_IDENTITY__OIDC__ISSUER": provider.url,
           "GOV_ASSISTANT_IDENTITY__OIDC__CLIENT_ID": CLIENT_ID,
           "GOV_ASSISTANT_IDENTITY__OIDC__CLIENT_SECRET": CLIENT_SECRET,
           "GOV_ASSISTANT_IDENTITY__OIDC__PUBLIC_URL": public_url,
           "GOV_ASSISTANT_IDENTITY__OIDC__API_AUDIENCE": API_AUDIENCE}
    env.update(extra)
    return env


@dataclass
class Site:
    provider: Provider
    server: ServerThread
    container: object


@pytest.fixture(scope="module")
def provider():
    with Provider() as p:
        yield p


@pytest.fixture(scope="module")
def site(provider, tmp_path_factory):
    """The whole app with OIDC on: KB `open` granted to department 办公室 (张三's), `closed` to nobody."""
    from identity_fixtures import fill, make_container
    from assistant.api.app import create_app
    server = ServerThread()
    c = make_container(tmp_path_factory.mktemp("oidc") / "data", **oidc_env(provider, server.url))
    fill(c)
    c.directory.add_rule("department", "办公室", role="reader", by="test")
    c.directory.grant("open", "department", "办公室", by="test")
    server.start(create_app(c))
    try:
        yield Site(provider, server, c)
    finally:
        server.stop()


def audit_rows(c, principal: str | None = None) -> list[dict]:
    return [e for e in c.audit.tail(400) if principal is None or e["principal"] == principal]


def strip(s: str) -> str:
    return re.sub(r"\s+", "", s)
