"""Scopes, grants and tokens of Docker's token authentication, as Distribution 2.8 checks them.

The engine meets a 401 from the registry naming the realm, asks the realm
``GET ?service=megamind-registry&scope=repository:NAME:pull,push`` (with basic auth when
logged in), and sends the token it gets as ``Authorization: Bearer``.  The registry
accepts a token whose ``iss`` is its ``issuer``, whose ``aud`` is its ``service``, that is
within ``nbf``..``exp`` (60 s of leeway each side), signed by a key of its
``rootcertbundle`` (found by ``kid``), and whose ``access`` claim lists the action the
request needs on the resource: ``pull`` to read, ``push`` (with ``pull``) to write,
``delete`` to delete; ``registry:catalog:*`` to list repositories.

A scope that does not parse, or asks for a resource or action this platform does not
grant, is granted nothing, as the specification says: the token is answered all the
same, and the registry refuses what it lacks.
"""

from __future__ import annotations

import datetime
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from megamind.errors import ImageNotAllowed
from megamind.imageref import PUBLIC_REGISTRY, parse_image
from megamind.registryauth.keys import SigningKey

ISSUER = "megamind"
SERVICE = "megamind-registry"
ALGORITHM = "ES256"  # what an EC P-256 key signs with, and what the registry expects of one
# A token the engine fetched (login, push, pull); it fetches a new one when this one expires.
TOKEN_TTL_S = 300
# An executor's token for one task's pull: it must outlive the pull itself, which the
# engine does not renew, up to the agent's pull timeout (600 s by default).
TASK_PULL_TTL_S = 900
# Per request: a push asks for one or two (a layer mounted from another repository).  Past
# either bound the request is refused: these are the bounds the OpenAPI document states.
MAX_SCOPES = 16  # scope parameters
MAX_SCOPE_CHARS = 512  # in one scope parameter

REPOSITORY = "repository"
PULL, PUSH, DELETE = "pull", "push", "delete"
REPOSITORY_ACTIONS = (PULL, PUSH, DELETE)


class ScopeLimitExceeded(ValueError):
    pass


@dataclass(frozen=True)
class Access:
    """One entry of a token's ``access`` claim: the actions allowed on one resource."""

    type: str
    name: str
    actions: tuple[str, ...]

    def claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def repository_pull(name: str) -> Access:
    return Access(REPOSITORY, name, (PULL,))


CATALOG = Access("registry", "catalog", ("*",))  # listing every repository: the API's own reads only


def valid_repository_name(name: str) -> bool:
    """A repository name as customers may name it (``megamind.network/<name>``): Docker's grammar."""
    try:
        return parse_image(f"{PUBLIC_REGISTRY}/{name}").name == name
    except ImageNotAllowed:
        return False


def parse_scope(text: str) -> Access | None:
    """``repository:NAME:ACTION[,ACTION...]``, the repository actions only; None otherwise.

    The type ends at the first colon and the actions start after the last one, as the
    registry reads them; a name must then be one a customer could run."""
    if len(text) > MAX_SCOPE_CHARS:
        return None
    kind, _, rest = text.partition(":")
    name, colon, actions = rest.rpartition(":")
    if kind != REPOSITORY or not colon or not valid_repository_name(name):
        return None
    asked = set(actions.split(","))
    wanted = tuple(action for action in REPOSITORY_ACTIONS if action in asked)
    return Access(REPOSITORY, name, wanted) if wanted else None


def parse_scopes(values: Iterable[str]) -> list[Access]:
    """Every ``scope`` parameter (each may hold several, separated by spaces), those that parse,
    one entry per repository with the actions of all its scopes.  Raises ScopeLimitExceeded."""
    values = list(values)
    if len(values) > MAX_SCOPES:
        raise ScopeLimitExceeded(f"at most {MAX_SCOPES} scope parameters per request, not {len(values)}")
    if any(len(value) > MAX_SCOPE_CHARS for value in values):
        raise ScopeLimitExceeded(f"a scope parameter holds at most {MAX_SCOPE_CHARS} characters")
    texts = [text for value in values for text in value.split(" ") if text]
    merged: dict[str, set[str]] = {}
    for text in texts:
        access = parse_scope(text)
        if access is not None:
            merged.setdefault(access.name, set()).update(access.actions)
    return [Access(REPOSITORY, name, tuple(a for a in REPOSITORY_ACTIONS if a in actions))
            for name, actions in merged.items()]


@dataclass(frozen=True)
class Ownership:
    """Who a repository belongs to (None: nobody has pushed it yet) and whether others may pull it."""

    owner_id: int | None = None
    public: bool = False


def claims_ownership(access: Access, account_id: int | None, ownership: Ownership) -> bool:
    """A push asked for a repository nobody owns: the asking account becomes its owner."""
    return account_id is not None and ownership.owner_id is None and PUSH in access.actions


def grant(access: Access, account_id: int | None, ownership: Ownership) -> Access:
    """What the account (None: anonymous) gets of what it asked: the owner everything,
    anyone else pull of a public repository, nothing more."""
    if account_id is not None and ownership.owner_id == account_id:
        return access
    allowed = (PULL,) if ownership.public and PULL in access.actions else ()
    return Access(access.type, access.name, allowed)


@dataclass(frozen=True)
class Token:
    token: str
    issued_at: int
    expires_in: int

    def answer(self) -> dict[str, Any]:
        """The token server's answer; ``access_token`` is the OAuth 2 name of the same token."""
        issued = datetime.datetime.fromtimestamp(self.issued_at, datetime.timezone.utc)
        return {"token": self.token, "access_token": self.token, "expires_in": self.expires_in,
                "issued_at": issued.isoformat().replace("+00:00", "Z")}


def mint(key: SigningKey, subject: str, access: Sequence[Access], ttl_s: int = TOKEN_TTL_S,
         now: float | None = None) -> Token:
    """A JWT the registry accepts for ``access``; ``subject`` is the account's name ("" anonymous)."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_urlsafe(16),
        "access": [entry.claim() for entry in access],
    }
    token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.key_id})
    return Token(token, issued, ttl_s)
