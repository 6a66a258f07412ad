"""Builders and openssl checks shared by the key backend tests: a self-signed CA certificate,
a leaf it issues, a CRL and an OCSP response, each verified with `cryptography` and with the
openssl CLI."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devicetrust.pki.keys import CaKey, UnsupportedKeyOperation, verify_signature
from tests.conftest import require_service

# Real time: openssl checks OCSP and CRL validity periods against the clock.
NOW = datetime.now(UTC).replace(microsecond=0)


def self_signed_ca(key: CaKey) -> x509.Certificate:
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"devicetrust test root {key.algorithm.value}")]
    )
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(minutes=5))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return key.sign_certificate(builder)


def leaf(key: CaKey, ca: x509.Certificate) -> x509.Certificate:
    device_key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [x509.NameAttribute(NameOID.COMMON_NAME, "c2c38155-b0d2-48b6-82fd-22fe3b316224")]
            )
        )
        .issuer_name(ca.subject)
        .public_key(device_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(minutes=5))
        .not_valid_after(NOW + timedelta(hours=24))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
    )
    return key.sign_certificate(builder)


def crl(key: CaKey, ca: x509.Certificate, revoked_serial: int) -> x509.CertificateRevocationList:
    revoked = (
        x509.RevokedCertificateBuilder()
        .serial_number(revoked_serial)
        .revocation_date(NOW - timedelta(minutes=1))
        .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
        .build()
    )
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(NOW - timedelta(minutes=1))
        .next_update(NOW + timedelta(days=1))
        .add_revoked_certificate(revoked)
        .add_extension(x509.CRLNumber(7), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
    )
    return key.sign_crl(builder)


def ocsp_builder(
    responder: x509.Certificate, ca: x509.Certificate, cert: x509.Certificate
) -> ocsp.OCSPResponseBuilder:
    return (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=ca,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=NOW - timedelta(minutes=1),
            next_update=NOW + timedelta(hours=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
        .certificates([responder])
    )


def delegated_responder(
    key: CaKey, ca: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """An OCSP responder key and the certificate `key` issues it (RFC 6960 §4.2.2.2)."""
    responder_key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devicetrust OCSP responder")])
        )
        .issuer_name(ca.subject)
        .public_key(responder_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(minutes=5))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
    )
    return responder_key, key.sign_certificate(builder)


def check_everything_verifies(key: CaKey, workdir: Path) -> None:
    """Sign a CA certificate, a leaf, a CRL, an OCSP response and raw bytes with `key`; check
    each with cryptography and the openssl CLI."""
    ca = self_signed_ca(key)
    ca.verify_directly_issued_by(ca)
    assert ca.public_key() == key.public_key()
    expected_hash = key.algorithm.hash_algorithm
    if expected_hash is None:
        assert ca.signature_hash_algorithm is None
    else:
        assert isinstance(ca.signature_hash_algorithm, type(expected_hash))
    device = leaf(key, ca)
    device.verify_directly_issued_by(ca)
    revocations = crl(key, ca, revoked_serial=device.serial_number + 1)
    assert revocations.is_signature_valid(key.public_key())
    if key.uri.startswith("pkcs11:"):
        with pytest.raises(UnsupportedKeyOperation):
            key.sign_ocsp(ocsp_builder(ca, ca, device))
        responder_key, responder = delegated_responder(key, ca)
        responder.verify_directly_issued_by(ca)
        response = ocsp_builder(responder, ca, device).sign(responder_key, hashes.SHA256())
    else:
        response = key.sign_ocsp(ocsp_builder(ca, ca, device))
        verify_signature(
            key.public_key(), key.algorithm, response.tbs_response_bytes, response.signature
        )
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    verify_signature(key.public_key(), key.algorithm, b"hello", key.sign_bytes(b"hello"))

    openssl = shutil.which("openssl")
    if openssl is None:
        require_service("openssl", "the openssl CLI is not installed")
    assert openssl is not None
    (workdir / "ca.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    (workdir / "leaf.pem").write_bytes(device.public_bytes(Encoding.PEM))
    (workdir / "crl.pem").write_bytes(revocations.public_bytes(Encoding.PEM))
    (workdir / "ocsp.der").write_bytes(response.public_bytes(Encoding.DER))
    at = ["-attime", str(int(NOW.timestamp()))]

    def run(*args: str) -> str:
        done = subprocess.run(
            [openssl, *args], cwd=workdir, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout + done.stderr

    assert "Certificate:" in run("x509", "-in", "ca.pem", "-noout", "-text")
    assert "ca.pem: OK" in run("verify", *at, "-CAfile", "ca.pem", "ca.pem")
    assert "leaf.pem: OK" in run(
        "verify", *at, "-crl_check", "-CAfile", "ca.pem", "-CRLfile", "crl.pem", "leaf.pem"
    )
    assert "verify OK" in run("crl", "-in", "crl.pem", "-noout", "-CAfile", "ca.pem")
    assert "Response verify OK" in run(
        "ocsp", "-respin", "ocsp.der", "-CAfile", "ca.pem", "-no_nonce", *at
    )
