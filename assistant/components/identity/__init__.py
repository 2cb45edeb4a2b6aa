"""Identity providers the assistant signs people in with (OpenID Connect)."""
