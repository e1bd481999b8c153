"""The answers and requests of the registry calls: the token server's answer, where to push,
and a repository's owner and visibility."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from megamind.imageref import _NAME, MAX_REFERENCE_LENGTH, PUBLIC_REGISTRY

# A repository name as customers write it after megamind.network/ (Docker's grammar).
NAME_PATTERN = rf"^{_NAME}$"
MAX_NAME_LENGTH = MAX_REFERENCE_LENGTH - len(PUBLIC_REGISTRY) - 1


class JsonBoolean(fields.Boolean):
    """true or false, as JSON Schema reads a boolean: never "yes", 1 or "true"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _name_field(**extra) -> fields.String:
    return fields.String(required=True, validate=[validate.Length(1, MAX_NAME_LENGTH), validate.Regexp(NAME_PATTERN)],
                         metadata={"description": f"the repository: {PUBLIC_REGISTRY}/<name>"}, **extra)


class RegistryTokenSchema(Schema):
    token = fields.String(required=True, metadata={"description": "a JWT the registry accepts as a Bearer token"})
    access_token = fields.String(required=True, metadata={"description": "the same token (its OAuth 2 name)"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds it is valid from issued_at"})
    issued_at = fields.String(required=True, metadata={"description": "RFC 3339, UTC"})


class RegistryInfoSchema(Schema):
    registry = fields.String(required=True, metadata={
        "description": "HOST:PORT of the registry, as executors reach it: push to <registry>/<name>:<tag>"})
    account = fields.String(required=True, metadata={"description": "the user name to log in to it with"})
    image_prefix = fields.String(required=True, metadata={
        "description": f"what customers write instead of the registry address: {PUBLIC_REGISTRY}"})


class VisibilityRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    name = _name_field()
    public = JsonBoolean(required=True, metadata={"description": "true: any account may pull and run it"})


class RepositorySchema(Schema):
    name = fields.String(required=True)
    image = fields.String(required=True, metadata={"description": f"{PUBLIC_REGISTRY}/<name>, without a tag"})
    owner = fields.String(required=True, metadata={"description": "the account that pushed it first"})
    public = fields.Boolean(required=True)


registry_token_schema = RegistryTokenSchema()
registry_info_schema = RegistryInfoSchema()
visibility_request_schema = VisibilityRequestSchema()
repository_schema = RepositorySchema()
