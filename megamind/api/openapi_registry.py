"""The OpenAPI entries of the registry calls, for ``openapi.py``."""

from __future__ import annotations

from typing import Any

from megamind.api.openapi_parts import (
    BODY_ERRORS,
    error_statuses,
    json_content,
    operation,
)
from megamind.api.registryschemas import (
    RegistryInfoSchema,
    RegistryTokenSchema,
    RepositorySchema,
    VisibilityRequestSchema,
)
from megamind.registryauth.distconfig import TOKEN_PATH
from megamind.registryauth.tokens import (
    MAX_SCOPE_CHARS,
    MAX_SCOPES,
    SERVICE,
    TASK_PULL_TTL_S,
    TOKEN_TTL_S,
)

REGISTRY_SCHEMAS = {
    "RegistryToken": RegistryTokenSchema,
    "RegistryInfo": RegistryInfoSchema,
    "VisibilityRequest": VisibilityRequestSchema,
    "Repository": RepositorySchema,
}

_RULES = f"""\
A repository (`megamind.network/<name>`, `<registry>/<name>` in the registry) belongs to
the account that pushed it first; only its owner may push or delete its tags. Other
accounts may pull and run it only while it is public; a task of an account that may not
pull its image ends in state 5 with an error saying so. Executors never hold customer
credentials: each start carries a token for the task's one repository, pull only, valid
{TASK_PULL_TTL_S // 60} minutes.
"""

_TOKEN_PARAMETERS = [
    {"in": "query", "name": "service", "required": False, "schema": {"type": "string", "enum": [SERVICE]},
     "description": "the registry's service name, as its 401 challenge gives it"},
    {"in": "query", "name": "scope", "required": False, "style": "form", "explode": True,
     "schema": {"type": "array", "maxItems": MAX_SCOPES, "items": {"type": "string", "maxLength": MAX_SCOPE_CHARS}},
     "description": "`repository:<name>:<actions>`, actions among pull, push, delete joined by commas; "
                    "repeated, or several separated by spaces; more than the bounds is a 400"},
    {"in": "query", "name": "account", "required": False, "schema": {"type": "string"},
     "description": "the login name the engine sends along; the credentials decide"},
    {"in": "query", "name": "client_id", "required": False, "schema": {"type": "string"},
     "description": "sent by the engine; ignored"},
    {"in": "query", "name": "offline_token", "required": False, "schema": {"type": "string"},
     "description": "sent by the engine at login; ignored (no refresh tokens are issued)"},
]

REGISTRY_PATHS: list[tuple[str, dict[str, Any]]] = [
    (TOKEN_PATH, {"get": operation(
        "registrytoken", "extension", "The registry's token server (Docker's token authentication)",
        json_content("RegistryToken", "A token with what the caller may do of what it asked"),
        error_statuses("BAD_REQUEST"), parameters=_TOKEN_PARAMETERS, security=[],
        description="Called by the Docker engine, not by people: `docker login <registry>` with the account's "
                    "name and an api-key, then push and pull. Credentials go as HTTP basic "
                    "(`Authorization: Basic`, the account name and an api-key); without them the caller is "
                    "anonymous and gets pull of public repositories only. A scope that asks for more than "
                    "the caller may do is answered with a token granting only what it may (possibly "
                    f"nothing): the registry refuses the rest. Tokens live {TOKEN_TTL_S // 60} minutes; the "
                    "engine asks again. A push to a repository nobody owns makes the caller its owner.\n\n"
                    + _RULES,
    )}),
    ("/api/v1/registry", {"get": operation(
        "getregistry", "extension", "Where to push images, and the name to log in to the registry with",
        json_content("RegistryInfo", "The registry's address and the caller's account name"), error_statuses(),
        description="Push with `docker login <registry> -u <account>` (the api-key as the password) and "
                    "`docker push <registry>/<name>:<tag>`, or `megamind push`.\n\n" + _RULES,
    )}),
    ("/api/v1/images", {"patch": operation(
        "setimagevisibility", "extension", "Publish or unpublish one of the caller's repositories",
        json_content("Repository", "The repository, with its visibility now"),
        error_statuses(*BODY_ERRORS, "FORBIDDEN"),
        requestBody={"required": True, "content": {"application/json": {"schema": "VisibilityRequest"}}},
        description="403 (code 5) when the repository is not the caller's: another account's, or one nobody "
                    "has pushed (the two are not told apart). Unpublishing stops new pulls by others at "
                    "once; a pull already granted finishes.\n\n" + _RULES,
    )}),
]
