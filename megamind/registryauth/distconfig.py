"""A CNCF Distribution 2.8 configuration whose ``auth: token`` points at the Megamind API.

``megamind registry-config`` prints it; registry/config.yml is the same document with
placeholders, for people to read and for containers to mount.  Values are written as
JSON strings, which YAML reads as they are.
"""

from __future__ import annotations

import json
from pathlib import Path

from megamind.registryauth.tokens import ISSUER, SERVICE

TOKEN_PATH = "/api/registry/token"  # the realm, on the API's own address
DEFAULT_ADDR = "127.0.0.1:5000"
DEFAULT_ROOT = Path("/var/lib/registry")


def realm(api_url: str) -> str:
    return api_url.rstrip("/") + TOKEN_PATH


def distribution_config(api_url: str, cert_path: Path, addr: str = DEFAULT_ADDR,
                        root: Path = DEFAULT_ROOT) -> str:
    """The registry's whole configuration: storage with deletes, plain HTTP on ``addr``, tokens."""
    q = json.dumps
    return f"""\
# Written by `megamind registry-config`; registry/config.yml explains each part.
version: 0.1
log:
  level: info
  fields:
    service: megamind-registry
storage:
  filesystem:
    rootdirectory: {q(str(root))}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: {q(addr)}
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  token:
    realm: {q(realm(api_url))}
    service: {q(SERVICE)}
    issuer: {q(ISSUER)}
    rootcertbundle: {q(str(cert_path))}
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""
