"""Ids and credentials.

Credentials are random 256-bit tokens; only their SHA-256 is stored.  A lookup by
hash never compares the secret itself, so a timing difference can reveal nothing
about a key, and a stolen database holds no usable key.
"""

from __future__ import annotations

import hashlib
import secrets
import string

_ID_ALPHABET = string.ascii_lowercase + string.digits

API_KEY_PREFIX = "mk_"
EXECUTOR_TOKEN_PREFIX = "mx_"


def random_id(length: int) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def new_task_id() -> str:
    return random_id(24)  # ~124 bits: unguessable


def new_hwid() -> str:
    return random_id(16)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_executor_token() -> str:
    return EXECUTOR_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
