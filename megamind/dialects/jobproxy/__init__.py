"""JobProxy, under ``/jobproxy`` (placeholder: routes come with the dialect)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from megamind.config import ServerConfig

PREFIX = "/jobproxy"
OPENAPI_PATHS: list[tuple[str, dict[str, Any]]] = []
OPENAPI_SCHEMAS: dict[str, Any] = {}


def create_app(config: ServerConfig) -> web.Application:
    return web.Application()
