"""Every way in becomes a Principal here: an API key (gak_…), an identity provider's bearer access token (OIDC,
JWKS-verified, when configured), or an identity a UI login vouched for (OIDC, LDAP). The directory's mapping and
grants are applied on every call, so a change to them takes effect at the next request."""
from __future__ import annotations

from typing import Callable

from assistant.services.access import Principal
from assistant.services.auth import KEY_PREFIX, ApiKeyStore, AuthError
from assistant.services.directory import Directory, ExternalIdentity

BearerVerifier = Callable[[str], ExternalIdentity]   # raises AuthError for a token it does not accept


class PrincipalService:
    def __init__(self, keys: ApiKeyStore, directory: Directory, bearer_verifier: BearerVerifier | None = None):
        self.keys, self.directory, self.bearer_verifier = keys, directory, bearer_verifier

    def authenticate(self, credential: str | None) -> Principal:
        """The API's credential: an API key, else (when OIDC bearer tokens are enabled) an access token."""
        if credential and not credential.startswith(KEY_PREFIX) and self.bearer_verifier is not None:
            return self.from_identity(self.bearer_verifier(credential))
        return self.from_key(credential)

    def from_key(self, secret: str | None) -> Principal:
        return self.directory.extend_key(self.keys.authenticate(secret))

    def for_key_record(self, rec: dict) -> Principal:
        """What an active key record's principal is now (a UI session compares itself with this)."""
        return self.directory.extend_key(self.keys.principal(rec))

    def from_identity(self, ident: ExternalIdentity) -> Principal:
        try:
            return self.directory.principal_for(ident)
        except PermissionError as exc:       # a disabled account, no subject
            raise AuthError(str(exc)) from None
