"""The registry's calls, as coroutines of AsyncClient: where to push images and the name
to log in with, and publishing or unpublishing one of the account's repositories."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from megamind.client.transport import Transport, decode_answer

__all__ = ["RegistryCalls", "RegistryInfo", "Repository"]


@dataclass(frozen=True)
class RegistryInfo:
    """``GET /api/v1/registry``: push to ``<registry>/<name>:<tag>``, logged in as ``account``."""

    registry: str
    account: str
    image_prefix: str  # megamind.network: how customers name what is pushed there

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RegistryInfo":
        return cls(registry=str(data["registry"]), account=str(data["account"]),
                   image_prefix=str(data["image_prefix"]))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Repository:
    """One repository of the registry, its owner and whether others may run it."""

    name: str
    image: str  # megamind.network/<name>
    owner: str
    public: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Repository":
        return cls(name=str(data["name"]), image=str(data["image"]), owner=str(data["owner"]),
                   public=bool(data["public"]))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RegistryCalls:
    """Mixed into AsyncClient, whose transport it calls."""

    _http: Transport

    async def registry(self) -> RegistryInfo:
        """The registry's address as executors reach it, and the account name to log in with."""
        return decode_answer(await self._http.call("GET", "/api/v1/registry"), RegistryInfo.from_json)

    async def set_image_public(self, name: str, public: bool) -> Repository:
        """Publish (any account may run it) or unpublish one of the account's repositories;
        ``name`` as in ``megamind.network/<name>``.  Another account's: Forbidden."""
        data = await self._http.call("PATCH", "/api/v1/images", {"name": name, "public": public})
        return decode_answer(data, Repository.from_json)
