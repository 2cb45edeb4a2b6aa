"""OpenID Connect relying party (authorization code + PKCE) and API bearer-token verifier.

Everything cryptographic is done by maintained libraries: authlib builds the authorization request (PKCE S256) and
exchanges the code; joserfc (authlib's JOSE successor) verifies every JWT against the provider's JWKS. What is
checked:

- ID token: signature (a key of the provider's JWKS, RS/ES/PS algorithms only — never `none` or HMAC), `iss` =
  the configured issuer, `aud` contains client_id (and `azp`, when present and aud has several values, is it),
  `exp` (with `leeway_s`), `iat` present, `nonce` = the one this login sent, `sub` present.
- API access token (RFC 9068 style JWT, as Keycloak, Azure AD, ADFS, Authing issue them): signature against the
  same JWKS, `iss`, `aud` contains `api_audience`, `exp` present and not passed, `sub` present. An opaque
  (non-JWT) access token is refused: there is nothing to verify it against without introspection.

The JWKS is cached and fetched again (at most every JWKS_REFRESH_S) when a token names a kid it does not hold, so
a key rotation at the provider is picked up. Tokens and the client secret are never logged.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from assistant.components.identity import AuthError, ExternalIdentity
from assistant.components.identity.once import OneTimeStore

log = logging.getLogger("assistant.oidc")

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
JWKS_REFRESH_S = 30.0       # an unknown kid refetches the JWKS at most this often
DISCOVERY_TTL_S = 3600.0
CALLBACK_PATH = "/auth/oidc/callback"


class OidcError(Exception):
    """A sign-in that cannot go on (provider unreachable, bad response, token refused); the message is for people
    and carries no token."""


class OidcClient:
    def __init__(self, settings: Any, http: httpx.Client | None = None, clock=time.time):
        if not settings.issuer or not settings.client_id:
            raise OidcError("identity.oidc needs issuer and client_id")
        self.settings = settings
        self.issuer = settings.issuer.rstrip("/")
        self._http = http
        self._clock = clock
        self._lock = threading.Lock()
        self._meta: tuple[float, dict] | None = None
        self._jwks: tuple[float, KeySet] | None = None

    # -- provider metadata ------------------------------------------------------------------------------------
    def _get_json(self, url: str) -> dict:
        try:
            if self._http is not None:
                r = self._http.get(url, timeout=self.settings.timeout_s)
            else:
                r = httpx.get(url, timeout=self.settings.timeout_s)
            r.raise_for_status()
            data = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("identity provider request failed: %s %s", url, type(exc).__name__)
            raise OidcError("无法连接统一身份认证服务，请稍后再试。") from None
        if not isinstance(data, dict):
            raise OidcError("统一身份认证服务返回了无法识别的数据。")
        return data

    def metadata(self) -> dict:
        """The provider's discovery document (cached an hour); its issuer must be the configured one."""
        with self._lock:
            if self._meta is not None and self._clock() - self._meta[0] < DISCOVERY_TTL_S:
                return self._meta[1]
        meta = self._get_json(self.issuer + "/.well-known/openid-configuration")
        if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
            log.warning("discovery issuer %r is not the configured issuer %r", meta.get("issuer"), self.issuer)
            raise OidcError("统一身份认证服务的配置与本系统不一致（issuer）。")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not meta.get(key):
                raise OidcError(f"统一身份认证服务缺少 {key}。")
        with self._lock:
            self._meta = (self._clock(), meta)
        return meta

    def _keys(self, refresh: bool = False) -> KeySet:
        with self._lock:
            cached = self._jwks
            if cached is not None and (not refresh or self._clock() - cached[0] < JWKS_REFRESH_S):
                return cached[1]
        data = self._get_json(self.metadata()["jwks_uri"])
        try:
            keys = KeySet.import_key_set(data)
        except (JoseError, ValueError, TypeError, KeyError):
            raise OidcError("统一身份认证服务的签名密钥（JWKS）无法解析。") from None
        with self._lock:
            self._jwks = (self._clock(), keys)
        return keys

    # -- the browser flow -------------------------------------------------------------------------------------
    @property
    def redirect_uri(self) -> str:
        if not self.settings.public_url:
            raise OidcError("identity.oidc.public_url 未配置。")
        return self.settings.public_url.rstrip("/") + CALLBACK_PATH

    def _oauth(self):
        from authlib.integrations.httpx_client import OAuth2Client
        return OAuth2Client(self.settings.client_id, self.settings.client_secret, scope=self.settings.scopes,
                            redirect_uri=self.redirect_uri, code_challenge_method="S256",
                            timeout=self.settings.timeout_s)

    def authorization_url(self, state: str, nonce: str, code_verifier: str) -> str:
        """Where the browser goes to sign in: response_type=code, PKCE S256 challenge of code_verifier."""
        with self._oauth() as client:
            url, _ = client.create_authorization_url(self.metadata()["authorization_endpoint"], state=state,
                                                     nonce=nonce, code_verifier=code_verifier)
        return url

    def exchange_code(self, code: str, code_verifier: str) -> dict:
        """The token response for an authorization code (client authentication: client_secret_basic / post)."""
        meta = self.metadata()
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        auth_method = "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
        try:
            with self._oauth() as client:
                client.token_endpoint_auth_method = auth_method if self.settings.client_secret else "none"
                token = client.fetch_token(meta["token_endpoint"], grant_type="authorization_code", code=code,
                                           code_verifier=code_verifier, redirect_uri=self.redirect_uri)
        except httpx.HTTPError as exc:
            log.warning("token endpoint unreachable: %s", type(exc).__name__)
            raise OidcError("无法连接统一身份认证服务，请稍后再试。") from None
        except Exception as exc:  # noqa: BLE001 - authlib's OAuthError (invalid_grant: a used or expired code ...)
            log.warning("token endpoint refused the code: %s", getattr(exc, "error", type(exc).__name__))
            raise OidcError("统一身份认证服务拒绝了本次登录（授权码无效或已使用），请重新登录。") from None
        if not token.get("id_token"):
            raise OidcError("统一身份认证服务未返回 ID 令牌。")
        return dict(token)

    def end_session_url(self, post_logout_redirect_uri: str | None = None, id_token_hint: str | None = None):
        """RP-initiated logout at the provider, when it has an end_session_endpoint (else None)."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except OidcError:
            return None
        if not endpoint:
            return None
        from urllib.parse import urlencode
        params = {"client_id": self.settings.client_id}
        if post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = post_logout_redirect_uri
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)

    # -- token verification -----------------------------------------------------------------------------------
    def _decode(self, token: str) -> dict:
        """The claims of a JWT whose signature a key of the provider's JWKS verifies (refetched once for an
        unknown kid)."""
        if not isinstance(token, str) or token.count(".") != 2:
            raise OidcError("not a signed JWT")
        for refresh in (False, True):
            try:
                return dict(jwt.decode(token, self._keys(refresh), algorithms=ALGORITHMS).claims)
            except JoseError as exc:
                if refresh or exc.error not in ("invalid_key_id", "missing_key"):
                    raise OidcError(f"token refused: {exc.error}") from None
            except (ValueError, TypeError):
                raise OidcError("token refused: malformed") from None
        raise OidcError("token refused")

    def _check(self, claims: dict, audience: str, **extra) -> None:
        options = {"iss": {"essential": True, "value": self.issuer}, "aud": {"essential": True, "value": audience},
                   "exp": {"essential": True}, "sub": {"essential": True}, **extra}
        try:
            jwt.JWTClaimsRegistry(now=int(self._clock()), leeway=int(self.settings.leeway_s), **options) \
                .validate(claims)
        except JoseError as exc:
            raise OidcError(f"token refused: {exc.error} {getattr(exc, 'claim', '')}".strip()) from None
        if not str(claims.get("sub") or "").strip():
            raise OidcError("token refused: no subject")

    def verify_id_token(self, id_token: str, nonce: str) -> dict:
        claims = self._decode(id_token)
        self._check(claims, self.settings.client_id, iat={"essential": True},
                    nonce={"essential": True, "value": nonce})
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.settings.client_id:
            raise OidcError("token refused: azp")
        return claims

    def verify_access_token(self, token: str) -> ExternalIdentity:
        """An API bearer token (AuthError, i.e. 401, for anything not accepted; the reason goes to the log only)."""
        if not self.settings.api_audience:
            raise AuthError("bearer tokens are not accepted here")
        try:
            claims = self._decode(token)
            self._check(claims, self.settings.api_audience)
        except OidcError as exc:
            log.info("bearer token refused: %s", exc)
            raise AuthError("invalid or expired bearer token") from None
        return self.identity(claims)

    def identity(self, claims: dict) -> ExternalIdentity:
        s = self.settings
        groups = claims.get(s.groups_claim) or ()
        departments = claims.get(s.department_claim) or ()
        return ExternalIdentity(
            source="oidc", subject=str(claims["sub"]), name=str(claims.get(s.name_claim) or ""),
            groups=tuple(str(g) for g in ([groups] if isinstance(groups, str) else groups)),
            departments=tuple(str(d) for d in ([departments] if isinstance(departments, str) else departments)),
            claims=dict(claims))


class LoginTickets:
    """The handover from the OIDC callback to the UI: a random one-time ticket bound to the verified identity,
    kept server side in the shared one-time store (once.py), so the page load may land on another replica than
    the callback; valid `ttl_s` and redeemable once. The browser carries only the opaque ticket."""

    KIND = "ui_ticket"

    def __init__(self, store: OneTimeStore, ttl_s: float = 60.0):
        self.store, self.ttl_s = store, ttl_s

    def issue(self, ident: ExternalIdentity) -> str:
        ticket = secrets.token_urlsafe(32)
        data = {"source": ident.source, "subject": ident.subject, "name": ident.name,
                "groups": list(ident.groups), "departments": list(ident.departments), "claims": ident.claims,
                "enabled": ident.enabled}
        self.store.put(self.KIND, ticket, data, self.ttl_s)
        return ticket

    def redeem(self, ticket: str | None) -> ExternalIdentity | None:
        """The identity for a live ticket, once (on whichever replica asks first); None for an unknown, used
        or expired one."""
        data = self.store.take(self.KIND, ticket)
        if data is None:
            return None
        return ExternalIdentity(source=data["source"], subject=data["subject"], name=data["name"],
                                groups=tuple(data["groups"]), departments=tuple(data["departments"]),
                                claims=dict(data["claims"]), enabled=bool(data["enabled"]))
