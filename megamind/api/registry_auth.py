"""The registry's token server, the calls about repositories, and the executors' pull tokens.

The registry runs with ``auth: token`` and trusts the certificate of the key created
here at the first start; it sends every engine without a token to
``GET /api/registry/token`` (outside ``/api/v1/``: the engine speaks HTTP basic, not
the ``api-key`` header).  A customer logs in with the account's name and an api-key;
no credentials at all is the anonymous caller, who may pull public repositories only.

An executor never holds customer credentials: each start or restart command carries a
token minted as the command is sent, for the task's one repository, pull only, and only
when the task's account may pull it.
"""

from __future__ import annotations

import asyncio
import binascii
import dataclasses
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import BasicAuth, hdrs, web

from megamind import protocol
from megamind.api.bodies import json_response, read_body
from megamind.api.keys import (
    ACCOUNT,
    config_key,
    rate_limiter_key,
    signing_key_key,
    store_key,
    task_tokens_key,
)
from megamind.api.registryschemas import (
    registry_info_schema,
    registry_token_schema,
    repository_schema,
    visibility_request_schema,
)
from megamind.errors import BadRequest, ImageNotAllowed, Unauthorized
from megamind.imageref import PUBLIC_REGISTRY, parse_image
from megamind.registryauth.distconfig import TOKEN_PATH  # noqa: F401  (routes.py names it from here)
from megamind.registryauth.keys import SigningKey, ensure_signing_key
from megamind.registryauth.tokens import (
    SERVICE,
    TASK_PULL_TTL_S,
    Access,
    Ownership,
    ScopeLimitExceeded,
    claims_ownership,
    grant,
    mint,
    parse_scopes,
    repository_pull,
)
from megamind.store import Store
from megamind.store.accounts import Account
from megamind.store.taskmodel import Command

log = logging.getLogger(__name__)

# A task's pull token is used again for the same account and grant while this much of its
# life is left: a burst of starts of one image carries one token, and the agent joins
# their pulls into one.
_REUSE_WHILE_LEFT_S = TASK_PULL_TTL_S - 60
_MAX_CACHED_TOKENS = 10_000


async def registry_auth_ctx(app: web.Application) -> AsyncIterator[None]:
    """The signing key, created beside the database at the first start."""
    key = await asyncio.to_thread(ensure_signing_key, app[config_key].registry_auth_root)
    app[signing_key_key] = key
    app[task_tokens_key] = TaskPullTokens(app[store_key], key)
    yield


async def token(request: web.Request) -> web.Response:
    """GET /api/registry/token: Docker's token authentication, for the registry."""
    account = await _basic_caller(request)
    service = request.query.get("service")
    if service is not None and service != SERVICE:
        raise BadRequest(f"service: this token server serves {SERVICE!r}, not {service!r}")
    try:
        asked = parse_scopes(request.query.getall("scope", []))
    except ScopeLimitExceeded as exc:
        raise BadRequest(f"scope: {exc}") from None
    store = request.app[store_key]
    owned = await store.repositories.many(access.name for access in asked)
    account_id = account.id if account is not None else None
    granted: list[Access] = []
    for access in asked:
        ownership = owned[access.name].ownership if access.name in owned else Ownership()
        if claims_ownership(access, account_id, ownership):
            assert account is not None
            ownership = await store.repositories.claim(access.name, account.id)
            if ownership.owner_id == account.id:
                log.info("repository %s belongs to %s from now on", access.name, account.name)
        granted.append(grant(access, account_id, ownership))
    minted = mint(request.app[signing_key_key], account.name if account is not None else "", granted)
    return json_response(registry_token_schema.dump(minted.answer()))


async def _basic_caller(request: web.Request) -> Account | None:
    """The account of HTTP basic credentials (its name, an api-key), or None without any."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return None
    try:
        credentials = BasicAuth.decode(header)
    except (ValueError, binascii.Error):
        raise Unauthorized("Authorization: expected Basic credentials: the account name and an api-key") from None
    caller = await request.app[store_key].accounts.by_api_key(credentials.password)
    if caller is None or caller.account.name != credentials.login:
        raise Unauthorized("the account name and api-key do not match a live key of that account")
    await request.app[rate_limiter_key].check(caller)
    return caller.account


async def registry_info(request: web.Request) -> web.Response:
    """GET /api/v1/registry: where to push, and the name to log in with."""
    return json_response(registry_info_schema.dump({
        "registry": request.app[config_key].registry,
        "account": request[ACCOUNT].name,
        "image_prefix": PUBLIC_REGISTRY,
    }))


async def set_visibility(request: web.Request) -> web.Response:
    """PATCH /api/v1/images: publish or unpublish one of the caller's repositories."""
    body = await read_body(request, visibility_request_schema)
    repository = await request.app[store_key].repositories.set_public(request[ACCOUNT].id, body["name"],
                                                                      body["public"])
    return json_response(repository_schema.dump({
        "name": repository.name, "image": f"{PUBLIC_REGISTRY}/{repository.name}",
        "owner": repository.owner, "public": repository.public,
    }))


class TaskPullTokens:
    """Pull tokens for the commands an executor is sent, never stored with them."""

    def __init__(self, store: Store, key: SigningKey) -> None:
        self._store = store
        self._key = key
        self._cache: dict[tuple[str, Access], tuple[float, str]] = {}

    async def stamp(self, command: Command) -> protocol.Command:
        """The command as sent: a start or restart carries a token for its image's repository,
        granting pull when the task's account may pull it and nothing otherwise."""
        message = command.message()
        if message.op not in (protocol.Op.START, protocol.Op.RESTART):
            return message
        try:
            name = parse_image(message.public_image).name
        except ImageNotAllowed:
            return message
        found = await self._store.repositories.task_account(command.taskid, name)
        if found is None:
            return message
        account_id, account_name, ownership = found
        access = grant(repository_pull(name), account_id, ownership)
        return dataclasses.replace(message, pull_token=self._token(account_name, access))

    def _token(self, subject: str, access: Access) -> str:
        now = time.time()
        cached = self._cache.get((subject, access))
        if cached is not None and cached[0] - now >= _REUSE_WHILE_LEFT_S:
            return cached[1]
        minted = mint(self._key, subject, [access], TASK_PULL_TTL_S, now)
        if len(self._cache) >= _MAX_CACHED_TOKENS:
            self._cache.clear()
        self._cache[(subject, access)] = (minted.issued_at + minted.expires_in, minted.token)
        return minted.token
