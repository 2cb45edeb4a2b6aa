"""Identity providers for sign-in (issue #17): OpenID Connect and LDAP / Active Directory."""
