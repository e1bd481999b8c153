"""The seeds' other job APIs, each served under a base path of its own as a thin translation
onto the native job model (`megamind.api.jobservice`): Flux RESTful, JobProxy, the GPU job
market and Onepanel (`../shared/dialects.md`).

Each dialect module gives ``PREFIX`` (its base path), ``create_app(config)`` (its
sub-application) and ``OPENAPI_PATHS`` (its operations as (full path, operations) pairs,
for the one OpenAPI document) and ``OPENAPI_SCHEMAS`` (marshmallow schemas by component name).
"""

from __future__ import annotations

from aiohttp import web

from megamind.api.keys import config_key
from megamind.dialects import flux, jobproxy, market, onepanel

DIALECTS = (flux, jobproxy, market, onepanel)


def add_dialects(app: web.Application) -> None:
    for dialect in DIALECTS:
        app.add_subapp(dialect.PREFIX, dialect.create_app(app[config_key]))
