"""The registry's token authentication, as pure code: the signing key and its certificate,
the JWTs the registry accepts, what a scope asks for and what an account may be granted,
and the registry's configuration that trusts the key.

    keys        the EC P-256 key and self-signed certificate, created once; the libtrust key id
    tokens      scopes, grants and JWT minting (Docker's token authentication specification)
    distconfig  a CNCF Distribution 2.8 configuration with ``auth: token`` pointing at the API

The API is the token server (``megamind.api.registry_auth``); nothing here does I/O but
reading and creating the key files.
"""
