"""The key that signs registry tokens, and the certificate the registry trusts it by.

Created at the server's first start (or by ``megamind registry-config``, which the registry
needs before the server runs), beside the database: ``registry-auth/key.pem`` (mode 600)
and ``registry-auth/cert.pem``.  Several API processes may share one folder, so the
registry trusts all of them: creation happens under a lock and never replaces a key.

Distribution 2.8 finds the key of a token by the JWT header's ``kid``: the libtrust
fingerprint of a public key in its ``rootcertbundle``.
"""

from __future__ import annotations

import base64
import datetime
import fcntl
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

KEY_FILE = "key.pem"
CERT_FILE = "cert.pem"
_LOCK_FILE = ".lock"
# The registry checks the certificate only as the holder of a trusted key, but an
# expired one is refused all the same: long enough never to matter.
CERT_DAYS = 3650
CERT_NAME = "megamind registry token signer"


class UnusableKey(Exception):
    """The key folder holds something unusable (a key and a certificate that do not match)."""


@dataclass(frozen=True)
class SigningKey:
    private_key: ec.EllipticCurvePrivateKey
    key_id: str  # libtrust form: 12 groups of 4 base32 characters joined by ":"
    cert_path: Path

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, its first 240 bits in base32, in groups of 4."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i:i + 4] for i in range(0, len(text), 4))


def ensure_signing_key(folder: Path) -> SigningKey:
    """The folder's key, created with its certificate when there is none yet."""
    key_path, cert_path = folder / KEY_FILE, folder / CERT_FILE
    if not (key_path.exists() and cert_path.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / _LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be creating them right now
            if not key_path.exists():
                _write_private(key_path, _key_pem(ec.generate_private_key(ec.SECP256R1())))
            if not cert_path.exists():
                _write_public(cert_path, _certificate_pem(_read_key(key_path)))
    return load_signing_key(folder)


def load_signing_key(folder: Path) -> SigningKey:
    key_path, cert_path = folder / KEY_FILE, folder / CERT_FILE
    private_key = _read_key(key_path)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key_id = libtrust_key_id(private_key.public_key())
    if libtrust_key_id(certificate.public_key()) != key_id:  # type: ignore[arg-type]
        raise UnusableKey(f"{cert_path} does not certify the key in {key_path}: remove both to make new ones")
    return SigningKey(private_key, key_id, cert_path)


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UnusableKey(f"{path} is not an EC P-256 private key (tokens are signed with ES256)")
    return key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificate_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CERT_NAME)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    """Readable by its owner only, from the first byte written."""
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(temporary, path)


def _write_public(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(data)
    os.replace(temporary, path)
