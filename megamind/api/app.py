"""The application factory: every resource is opened and closed in ``cleanup_ctx``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from megamind.api import protocol_errors
from megamind.api.auth import Authenticator
from megamind.api.hub import ExecutorHub
from megamind.api.keys import (
    auth_key,
    background_key,
    blobs_key,
    config_key,
    hub_key,
    rate_limiter_key,
    store_key,
    task_tokens_key,
)
from megamind.api.middlewares import customer_auth_middleware, error_middleware
from megamind.api.ratelimit import KeyRateLimiter
from megamind.api.registry_auth import registry_auth_ctx
from megamind.api.routes import setup_routes
from megamind.blobs import LocalBlobStore
from megamind.config import ServerConfig
from megamind.store import Store

log = logging.getLogger(__name__)

LOCAL_ACCOUNT = "local"


DAY_S = 86400
HISTORY_PURGE_S = 3600.0
# How often executors removed by another process (`megamind admin revoke-executor`) are
# looked for and retired: one read of the executors table, cheap at any fleet size.
REMOVAL_CHECK_S = 2.0


def create_app(config: ServerConfig) -> web.Application:
    protocol_errors.install()
    app = web.Application(
        middlewares=[error_middleware, customer_auth_middleware],
        client_max_size=config.max_body_bytes,
    )
    app[config_key] = config
    app[rate_limiter_key] = KeyRateLimiter(config.rate_limit)
    app.cleanup_ctx.extend([store_ctx, blobs_ctx, registry_auth_ctx, hub_ctx, background_ctx])
    setup_routes(app)
    return app


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[config_key]
    store = await Store.open(config.db_path, log_limit_bytes=config.log_limit_bytes,
                             platform_fee=config.platform_fee, metering=config.metering)
    if config.create_local_account:
        await _ensure_local_account(store, config)
    app[store_key] = store
    app[auth_key] = Authenticator(store, config.key_cache_ttl_s)
    yield
    await store.close()


async def blobs_ctx(app: web.Application) -> AsyncIterator[None]:
    app[blobs_key] = blobs = LocalBlobStore(app[config_key].blob_root)
    yield
    await blobs.close()


async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[config_key]
    await app[store_key].executors.all_offline()
    app[hub_key] = hub = ExecutorHub(app[store_key], config.heartbeat_s, config.results_limit_bytes,
                                     stamp=app[task_tokens_key].stamp)
    yield
    await hub.close()


async def background_ctx(app: web.Application) -> AsyncIterator[None]:
    config, store = app[config_key], app[store_key]

    async def expire_queue() -> None:
        for taskid in await store.scheduler.expire():
            log.info("task %s left the queue: its queue_timeout passed", taskid)

    async def expire_setup() -> None:
        expired = await store.tasks.expire_setup(time.time() - config.setup_timeout_s)
        for taskid, hwid in expired:
            log.warning("task %s on %s timed out in setup", taskid, hwid)
            await app[hub_key].fill(hwid)

    async def meter_watched() -> None:
        # Prepaid and limited accounts are charged often, so a limit is kept within one interval.
        await store.ledger.tick(watched_only=True)
        for overdrawn in await store.spending.overdrawn():
            commands = await store.tasks.halt(overdrawn.account_id, overdrawn.reason)
            log.info("account %s: %d task(s) %s", overdrawn.account_id, len(commands), overdrawn.reason)
            for command in commands:
                await app[hub_key].dispatch(command)

    async def meter_every_run() -> None:
        await store.ledger.tick(watched_only=False)

    async def retire_removed() -> None:
        for hwid in await store.executors.removed_in_use():
            await app[hub_key].retire(hwid)

    background = [
        (config.log_flush_s, store.logs.flush, "flush-logs"),
        (min(30.0, config.setup_timeout_s), expire_setup, "expire-setup"),
        (config.queue_sweep_s, expire_queue, "expire-queue"),
        (config.meter_interval_s, meter_watched, "meter-watched"),
        (config.meter_checkpoint_s, meter_every_run, "meter-checkpoint"),
        (REMOVAL_CHECK_S, retire_removed, "retire-removed"),
    ]
    if config.history_days is not None:
        async def purge_history() -> None:
            purged = await store.history.purge(time.time() - config.history_days * DAY_S)
            if purged:
                log.info("purged the records of %d deleted task(s) older than %d days", purged, config.history_days)

        background.append((HISTORY_PURGE_S, purge_history, "purge-history"))
    app[background_key] = tasks = [asyncio.create_task(_every(every, job), name=name) for every, job, name in background]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _every(seconds: float, job: Callable[[], Awaitable[None]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:
            log.exception("background job %s failed; retrying", getattr(job, "__name__", job))


async def _ensure_local_account(store: Store, config: ServerConfig) -> None:
    """With no flags, the server and a local executor share one account and its key file."""
    key_file = config.local_account_key_file
    if key_file.exists() and await store.accounts.exists(LOCAL_ACCOUNT):
        return
    if await store.accounts.exists(LOCAL_ACCOUNT):
        key = await store.accounts.add_key(LOCAL_ACCOUNT)
    else:
        _, key = await store.accounts.create(LOCAL_ACCOUNT)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    log.info("local account key written to %s", key_file)
