"""Helpers for the CA tests: device keys and CSRs (well-formed or deliberately not), and the
openssl CLI as an independent judge of what the CA produced."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from tests.conftest import require_service


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def make_csr(
    key: CertificateIssuerPrivateKeyTypes,
    *,
    common_name: str | None = None,
    uris: Sequence[str] = (),
    dns: Sequence[str] = (),
    ca: bool = False,
    hash_algorithm: hashes.HashAlgorithm | None = None,
    der: bool = False,
) -> bytes:
    subject = (
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        if common_name
        else x509.Name([])
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    names += [x509.DNSName(d) for d in dns]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    if hash_algorithm is None and not _is_edwards(key):
        hash_algorithm = hashes.SHA256()
    csr = builder.sign(key, hash_algorithm)  # type: ignore[arg-type]
    return csr.public_bytes(Encoding.DER if der else Encoding.PEM)


def _is_edwards(key: object) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ed448, ed25519

    return isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)


def sha1_csr() -> bytes:
    """A P-256 CSR signed with ECDSA-SHA1 (cryptography no longer signs with SHA-1)."""
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "k.pem"
        key.write_bytes(ec_key().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        result = openssl("req", "-new", "-key", key, "-sha1", "-subj", "/")
        assert result.returncode == 0, result.stderr
        return result.stdout.encode()


def tamper_signature(csr_pem: bytes) -> bytes:
    """The same CSR with one byte of its signature changed (DER out)."""
    der = bytearray(x509.load_pem_x509_csr(csr_pem).public_bytes(Encoding.DER))
    der[-3] ^= 0x01  # inside the signature BIT STRING, which ends the structure
    return bytes(der)


def openssl_bin() -> str:
    path = shutil.which("openssl")
    if path is None:
        require_service("openssl", "the openssl CLI is not installed")
    assert path is not None
    return path


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [openssl_bin(), *map(str, args)], capture_output=True, text=True, check=False, timeout=30
    )


def x509_text(workdir: Path, pem: str) -> str:
    path = write(workdir, "cert.pem", pem)
    result = openssl("x509", "-in", path, "-text", "-noout")
    assert result.returncode == 0, result.stderr
    return result.stdout


def write(workdir: Path, name: str, text: str | bytes) -> Path:
    path = workdir / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def verify(
    workdir: Path,
    *,
    root: str,
    intermediate: str,
    leaf: str,
    at: datetime,
    crl_pem: str | None = None,
    purpose: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`openssl verify -CAfile root -untrusted intermediate leaf` at the test clock's time
    (optionally with `-crl_check` and the given CRL)."""
    args: list[str | Path] = [
        "verify",
        "-attime",
        str(int(at.timestamp())),
        "-CAfile",
        write(workdir, "root.pem", root),
        "-untrusted",
        write(workdir, "intermediate.pem", intermediate),
    ]
    if purpose:
        args += ["-purpose", purpose]
    if crl_pem is not None:
        args += ["-crl_check", "-CRLfile", write(workdir, "crl.pem", crl_pem)]
    args.append(write(workdir, "leaf.pem", leaf))
    return openssl(*args)
