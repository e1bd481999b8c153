"""Every typed key the application and its requests carry, in one place."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from megamind.blobs import BlobStore
from megamind.config import ServerConfig
from megamind.registryauth.keys import SigningKey
from megamind.store import Store
from megamind.store.accounts import Account

if TYPE_CHECKING:
    from megamind.api.auth import Authenticator  # noqa: F401  (named in the AppKeys below)
    from megamind.api.hub import ExecutorHub  # noqa: F401
    from megamind.api.ratelimit import KeyRateLimiter  # noqa: F401
    from megamind.api.registry_auth import TaskPullTokens  # noqa: F401

config_key = web.AppKey("config", ServerConfig)
store_key = web.AppKey("store", Store)
blobs_key = web.AppKey("blobs", BlobStore)
hub_key = web.AppKey("hub", "ExecutorHub")
auth_key = web.AppKey("auth", "Authenticator")
rate_limiter_key = web.AppKey("rate_limiter", "KeyRateLimiter")
background_key = web.AppKey("background", list[asyncio.Task])
signing_key_key = web.AppKey("signing_key", SigningKey)  # signs the registry's tokens
task_tokens_key = web.AppKey("task_tokens", "TaskPullTokens")

# Set on the request by the authentication middleware.  aiohttp >= 3.13 warns about
# plain string keys in a request's storage; older releases have no RequestKey.
ACCOUNT = web.RequestKey("account", Account) if hasattr(web, "RequestKey") else "megamind.account"
