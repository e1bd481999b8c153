"""The registry's token authentication as pure code: the key and its libtrust id, the JWT's
header and claims as Distribution 2.8 checks them, scopes (hostile ones too), grants."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import time

import jwt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from megamind.registryauth.distconfig import distribution_config, realm
from megamind.registryauth.keys import (
    CERT_FILE,
    KEY_FILE,
    UnusableKey,
    ensure_signing_key,
    libtrust_key_id,
    load_signing_key,
)
from megamind.registryauth.tokens import (
    ALGORITHM,
    DELETE,
    ISSUER,
    MAX_SCOPE_CHARS,
    MAX_SCOPES,
    PULL,
    PUSH,
    SERVICE,
    TOKEN_TTL_S,
    Access,
    Ownership,
    ScopeLimitExceeded,
    claims_ownership,
    grant,
    mint,
    parse_scope,
    parse_scopes,
    valid_repository_name,
)

ALICE, BOB = 1, 2


@pytest.fixture
def key(tmp_path):
    return ensure_signing_key(tmp_path / "auth")


# --- the key ---------------------------------------------------------------------------


def test_the_key_is_created_once_readable_by_its_owner_only(tmp_path):
    folder = tmp_path / "auth"
    first = ensure_signing_key(folder)
    assert stat.S_IMODE(os.stat(folder / KEY_FILE).st_mode) == 0o600
    again = ensure_signing_key(folder)
    assert again.key_id == first.key_id  # never replaced
    assert (folder / CERT_FILE).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_the_certificate_certifies_the_key(key):
    certificate = x509.load_pem_x509_certificate(key.cert_path.read_bytes())
    assert libtrust_key_id(certificate.public_key()) == key.key_id


def test_a_certificate_of_another_key_is_refused(tmp_path):
    one, other = ensure_signing_key(tmp_path / "one"), ensure_signing_key(tmp_path / "other")
    (tmp_path / "one" / CERT_FILE).write_bytes(other.cert_path.read_bytes())
    with pytest.raises(UnusableKey, match="does not certify"):
        load_signing_key(tmp_path / "one")
    assert one.key_id != other.key_id


def test_a_missing_certificate_is_made_again_for_the_same_key(tmp_path):
    key = ensure_signing_key(tmp_path)
    (tmp_path / CERT_FILE).unlink()
    assert ensure_signing_key(tmp_path).key_id == key.key_id


def test_the_key_id_is_libtrusts_fingerprint(key):
    # SHA-256 of the DER SubjectPublicKeyInfo, 240 bits of it in base32, 12 groups of 4.
    der = key.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    assert key.key_id == ":".join(text[i:i + 4] for i in range(0, 48, 4))
    assert len(key.key_id.split(":")) == 12 and all(len(group) == 4 for group in key.key_id.split(":"))


# --- the token -------------------------------------------------------------------------


def test_a_token_has_the_header_and_claims_the_registry_checks(key):
    now = 1_800_000_000
    token = mint(key, "alice", [Access("repository", "alice-img", (PULL, PUSH))], now=now)
    header = jwt.get_unverified_header(token.token)
    assert (header["alg"], header["kid"]) == (ALGORITHM, key.key_id)
    body = jwt.decode(token.token, key.public_key, algorithms=[ALGORITHM], audience=SERVICE, issuer=ISSUER,
                      options={"verify_exp": False, "verify_nbf": False, "verify_iat": False})
    assert body["sub"] == "alice" and body["aud"] == SERVICE and body["iss"] == ISSUER
    assert (body["iat"], body["nbf"], body["exp"]) == (now, now, now + TOKEN_TTL_S)
    assert body["access"] == [{"type": "repository", "name": "alice-img", "actions": ["pull", "push"]}]
    assert body["jti"] and body["jti"] != jwt.decode(
        mint(key, "alice", [], now=now).token, key.public_key, algorithms=[ALGORITHM], audience=SERVICE,
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False})["jti"]


def test_the_answer_has_both_names_of_the_token(key):
    answer = mint(key, "", [], ttl_s=60, now=0).answer()
    assert answer["token"] == answer["access_token"]
    assert (answer["expires_in"], answer["issued_at"]) == (60, "1970-01-01T00:00:00Z")


def test_another_key_cannot_forge_one(key, tmp_path):
    forged = mint(ensure_signing_key(tmp_path / "forger"), "alice", [])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged.token, key.public_key, algorithms=[ALGORITHM], audience=SERVICE)


def test_an_expired_token_is_expired(key):
    expired = mint(key, "alice", [], ttl_s=300, now=time.time() - 3600)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(expired.token, key.public_key, algorithms=[ALGORITHM], audience=SERVICE)


# --- scopes ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, access", [
    ("repository:alice-img:pull", Access("repository", "alice-img", (PULL,))),
    ("repository:team/app:push,pull", Access("repository", "team/app", (PULL, PUSH))),
    ("repository:a:delete,pull,push,pull", Access("repository", "a", (PULL, PUSH, DELETE))),
    ("repository:a:pull,*,admin", Access("repository", "a", (PULL,))),  # what is not granted is dropped
])
def test_scopes(text, access):
    assert parse_scope(text) == access


@pytest.mark.parametrize("text", [
    "", "repository", "repository:", "repository:a", "repository:a:", "repository::pull",
    "repository:a:*", "repository:a:admin",  # nothing this platform grants
    "registry:catalog:*",  # the API's own
    "repository(plugin):a:pull",  # classes are not served
    "repository:127.0.0.1:5000/a:pull",  # a host in the name
    "repository:A:pull", "repository:a/:pull", "repository:/a:pull", "repository:a//b:pull",
    "repository:../a:pull", "repository:a b:pull", "repository:a\n:pull", "repository:é:pull",
    "repository:a@sha256:pull", "repository:" + "a" * 300 + ":pull",
    "repository:a:pull" + "," * 600,
])
def test_hostile_or_foreign_scopes_grant_nothing(text):
    assert parse_scope(text) is None


def test_several_scopes_of_one_repository_are_one_entry():
    assert parse_scopes(["repository:a:pull", "repository:b:pull repository:a:push", "junk", ""]) == [
        Access("repository", "a", (PULL, PUSH)), Access("repository", "b", (PULL,))]


def test_too_many_or_too_long_scope_parameters_are_refused():
    assert len(parse_scopes([f"repository:r{i}:pull" for i in range(MAX_SCOPES)])) == MAX_SCOPES
    with pytest.raises(ScopeLimitExceeded):
        parse_scopes([f"repository:r{i}:pull" for i in range(MAX_SCOPES + 1)])
    with pytest.raises(ScopeLimitExceeded):
        parse_scopes(["repository:a:pull" + " " * MAX_SCOPE_CHARS])
    assert parse_scopes(["repository:a:pull repository:b:pull"]) == [  # several in one parameter
        Access("repository", "a", (PULL,)), Access("repository", "b", (PULL,))]


@given(st.text(max_size=300))
def test_no_text_breaks_the_parser(text):
    access = parse_scope(text)
    if access is not None:
        assert valid_repository_name(access.name) and access.actions
        assert set(access.actions) <= {PULL, PUSH, DELETE}


# --- grants ------------------------------------------------------------------------------

EVERYTHING = Access("repository", "r", (PULL, PUSH, DELETE))


def test_the_owner_gets_what_it_asks():
    assert grant(EVERYTHING, ALICE, Ownership(ALICE, public=False)) == EVERYTHING


@pytest.mark.parametrize("account", [BOB, None])
def test_others_get_pull_of_a_public_repository_only(account):
    assert grant(EVERYTHING, account, Ownership(ALICE, public=True)).actions == (PULL,)
    assert grant(EVERYTHING, account, Ownership(ALICE, public=False)).actions == ()


@pytest.mark.parametrize("account", [ALICE, BOB, None])
def test_nobody_pulls_a_repository_nobody_owns(account):
    assert grant(Access("repository", "r", (PULL,)), account, Ownership()).actions == ()


def test_a_push_to_a_repository_nobody_owns_claims_it_for_an_account_only():
    push = Access("repository", "r", (PULL, PUSH))
    assert claims_ownership(push, ALICE, Ownership())
    assert not claims_ownership(push, None, Ownership())  # anonymous
    assert not claims_ownership(push, BOB, Ownership(ALICE))  # owned already
    assert not claims_ownership(Access("repository", "r", (PULL,)), ALICE, Ownership())  # a pull claims nothing


# --- the registry's configuration ----------------------------------------------------------


def test_the_configuration_points_the_registry_at_the_api_and_the_certificate(key, tmp_path):
    config = yaml.safe_load(distribution_config("http://127.0.0.1:8080/", key.cert_path, "127.0.0.1:5001",
                                                tmp_path / "store"))
    assert config["auth"]["token"] == {"realm": "http://127.0.0.1:8080/api/registry/token", "service": SERVICE,
                                       "issuer": ISSUER, "rootcertbundle": str(key.cert_path)}
    assert config["http"]["addr"] == "127.0.0.1:5001"
    assert config["storage"]["filesystem"]["rootdirectory"] == str(tmp_path / "store")
    assert realm("http://h:1") == "http://h:1/api/registry/token"


def test_the_documented_template_has_the_same_shape():
    from pathlib import Path

    template = yaml.safe_load((Path(__file__).resolve().parents[1] / "registry" / "config.yml").read_text())
    generated = yaml.safe_load(distribution_config("http://x", Path("/c.pem")))

    def shape(value):
        return {k: shape(v) for k, v in value.items()} if isinstance(value, dict) else None

    assert shape(template) == shape(generated)
    assert (template["auth"]["token"]["service"], template["auth"]["token"]["issuer"]) == (SERVICE, ISSUER)


def test_registry_config_makes_the_key_the_server_will_use_and_prints_the_configuration(tmp_path):
    from click.testing import CliRunner

    from megamind.cli.main import cli
    from megamind.config import ServerConfig

    db = tmp_path / "home" / "megamind.db"
    result = CliRunner().invoke(cli, ["registry-config", "--db", str(db), "--api-url", "http://127.0.0.1:9000",
                                      "--addr", "127.0.0.1:5999", "--root", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(result.output)
    folder = ServerConfig(db_path=db).registry_auth_root
    assert folder == tmp_path / "home" / "registry-auth"
    assert config["auth"]["token"]["rootcertbundle"] == str(folder / CERT_FILE)
    assert config["auth"]["token"]["realm"] == "http://127.0.0.1:9000/api/registry/token"
    assert ensure_signing_key(folder).key_id == load_signing_key(folder).key_id


def test_a_commands_pull_token_travels_but_is_never_part_of_what_is_stored():
    from megamind.protocol import API_MESSAGES, Command, Op, decode

    command = Command(7, Op.START, "t1", "127.0.0.1:5000/a:1", "megamind.network/a:1", pull_token="tok")
    assert decode(command.encode(), API_MESSAGES) == command
    assert "pull_token" not in command.run_payload()
    bare = Command(7, Op.START, "t1", "127.0.0.1:5000/a:1")
    assert "pull_token" not in bare.to_wire() and decode(bare.encode(), API_MESSAGES).pull_token == ""
    assert "pull_token" not in Command(8, Op.REMOVE, "t1", pull_token="tok").to_wire()
