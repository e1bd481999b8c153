"""Calls beyond the contract: one task in detail, an owner's executors, the registry's images
(a task's output and input files are in ``output.py``; the registry's tokens and a
repository's visibility in ``registry_auth.py``).

They live under ``/api/v1/`` with the six calls, so the same api-key, rate limit and
error answers apply; none of them changes a shape the contract defines.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from yarl import URL

from megamind.api.bodies import json_response
from megamind.api.handlers import hardware_item
from megamind.api.hub import REMOVED_BY_OWNER
from megamind.api.keys import ACCOUNT, config_key, hub_key, signing_key_key, store_key
from megamind.api.taskdetail import detail_view
from megamind.api.schemas import (
    STATUS_OK,
    executor_item_schema,
    image_item_schema,
    task_detail_schema,
)
from megamind.errors import Unavailable
from megamind.imageref import PUBLIC_REGISTRY
from megamind.registryauth.keys import SigningKey
from megamind.registryauth.tokens import CATALOG, Access, mint, repository_pull

log = logging.getLogger(__name__)

REGISTRY_TIMEOUT_S = 10.0  # per request to the registry
IMAGES_TIMEOUT_S = 30.0  # for the whole listing
REGISTRY_PAGE = 100
MAX_PAGES = 100  # of one listing: a registry that links on forever is cut off
_TAG_LOOKUPS = 8
API_SUBJECT = "megamind-api"  # who the API's own registry tokens name


async def task(request: web.Request) -> web.Response:
    """GET /api/v1/task/{taskid}: gettasklist's object for one task, and what else the API knows."""
    detail = await request.app[store_key].tasks.detail(request[ACCOUNT].id, request.match_info["taskid"])
    return json_response(task_detail_schema.dump(await detail_view(request.app, detail)))


async def executors(request: web.Request) -> web.Response:
    """GET /api/v1/executors: the caller's own executors, online or not, free or busy."""
    store, hub = request.app[store_key], request.app[hub_key]
    account_id = request[ACCOUNT].id
    holders = await store.tasks.holders_of_owned_executors(account_id)
    items = []
    for record in await store.executors.for_account(account_id):
        online, holder = hub.is_online(record.hwid), holders.get(record.hwid)
        busy = holder is not None
        items.append({
            **hardware_item(record),
            "status": "offline" if not online else ("busy" if busy else "free"),
            "online": online,
            "busy": busy,
            # Another account's task id is that account's secret: the owner only learns "busy".
            "taskid": holder[0] if busy and holder[1] == account_id else None,
            "ip": record.ip,
            "last_seen": record.last_seen,
        })
    return json_response(executor_item_schema.dump(items, many=True))


async def remove_executor(request: web.Request) -> web.Response:
    """DELETE /api/v1/executors/{hwid}: the owner removes one of their executors.  Its token
    stops working, its link closes and its running task ends in error (`ExecutorHub.retire`);
    another account's executor answers as an unknown one."""
    hwid = request.match_info["hwid"]
    await request.app[store_key].executors.remove(hwid, owner_id=request[ACCOUNT].id)
    await request.app[hub_key].retire(hwid, REMOVED_BY_OWNER)
    return json_response(STATUS_OK)


async def images(request: web.Request) -> web.Response:
    """GET /api/v1/images: every name:tag the caller may run (its own repositories, the public
    ones, and those nobody owns yet), as customers name them, with owner and visibility."""
    registry, key = request.app[config_key].registry, request.app[signing_key_key]
    repositories, account_id = request.app[store_key].repositories, request[ACCOUNT].id
    base = f"http://{registry}"
    timeout = aiohttp.ClientTimeout(total=REGISTRY_TIMEOUT_S)
    try:
        async with asyncio.timeout(IMAGES_TIMEOUT_S), aiohttp.ClientSession(base, timeout=timeout) as http:
            listed = sorted(set(await _catalog(http, _bearer(key, CATALOG))))
            owned = await repositories.many(listed)
            names = [name for name in listed
                     if name not in owned or owned[name].public or owned[name].owner_id == account_id]
            limit = asyncio.Semaphore(_TAG_LOOKUPS)

            async def tags_of(name: str) -> list[str]:
                async with limit:
                    return await _tags(http, name, _bearer(key, repository_pull(name)))

            tag_lists = await asyncio.gather(*(tags_of(name) for name in names))
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, _NotFound) as exc:
        reason = str(exc) or type(exc).__name__
        log.warning("registry %s: %s", registry, reason)
        raise Unavailable(f"the image registry at {registry} cannot be read: {reason}") from None
    items = [
        {"image": f"{PUBLIC_REGISTRY}/{name}:{tag}", "name": name, "tag": tag,
         "owner": owned[name].owner if name in owned else None, "public": name in owned and owned[name].public}
        for name, tags in zip(names, tag_lists)
        for tag in sorted(set(tags))
    ]
    return json_response(image_item_schema.dump(items, many=True))


def _bearer(key: SigningKey, access: Access) -> dict[str, str]:
    """The API reads the registry with tokens of its own, one resource each."""
    return {"Authorization": f"Bearer {mint(key, API_SUBJECT, [access]).token}"}


async def _catalog(http: aiohttp.ClientSession, auth: dict[str, str]) -> list[str]:
    """All repository names, page by page (the registry links the next page)."""
    return await _listing(http, f"/v2/_catalog?n={REGISTRY_PAGE}", "repositories", auth)


async def _tags(http: aiohttp.ClientSession, name: str, auth: dict[str, str]) -> list[str]:
    try:
        return await _listing(http, f"/v2/{quote(name)}/tags/list?n={REGISTRY_PAGE}", "tags", auth)
    except _NotFound:
        return []  # listed in the catalog, but every tag has been deleted


async def _listing(http: aiohttp.ClientSession, url: str, key: str, auth: dict[str, str]) -> list[str]:
    items: list[str] = []
    next_url: str | None = url
    for _ in range(MAX_PAGES):
        if next_url is None:
            break
        body, next_url = await _get(http, next_url, auth)
        items.extend(str(item) for item in body.get(key) or [])
    return items


class _NotFound(Exception):
    def __str__(self) -> str:
        return f"GET {self.args[0]} answered HTTP 404"


async def _get(http: aiohttp.ClientSession, url: str, auth: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    async with http.get(url, headers=auth) as resp:
        if resp.status == 404:
            raise _NotFound(url)
        if resp.status != 200:
            raise ValueError(f"GET {url} answered HTTP {resp.status}")
        body = await resp.json(content_type=None)
        if not isinstance(body, dict):
            raise ValueError(f"GET {url} did not answer a JSON object")
        return body, _next_page(resp)


def _next_page(resp: aiohttp.ClientResponse) -> str | None:
    """The path of the next page from the Link header, on the same registry only."""
    link = resp.links.get("next")
    if not link:
        return None
    target = URL(str(link["url"]))
    if target.is_absolute() and (target.host, target.port) != (resp.url.host, resp.url.port):
        return None
    return target.path_qs if target.path.startswith("/v2/") else None
