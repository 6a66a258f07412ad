"""The end-entity checks of EK certificate verification (TCG EK Credential Profile 2.0 §3.2
instead of the WebPKI profile): a TCG-shaped EK certificate -- empty subject, critical SAN of
TPM attributes, EKU tcg-kp-EKCertificate -- verifies; a CA, a signing key usage, a foreign
EKU, an unknown critical extension, an expired certificate or a wrong signature do not. An
intermediate EK CA may carry the EK usage in its EKU (not clientAuth, as WebPKI would want)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devicetrust.provisioning.tpm import EkTrust, EndorsementKeyRefused, register_endorsement_key

pytest.importorskip("tpm2_pytss")

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
TCG_EK_CERTIFICATE = x509.ObjectIdentifier("2.23.133.8.1")
TPM_ATTRIBUTES = x509.Name(
    [
        x509.NameAttribute(x509.ObjectIdentifier("2.23.133.2.1"), "id:00001014"),
        x509.NameAttribute(x509.ObjectIdentifier("2.23.133.2.2"), "swtpm"),
        x509.NameAttribute(x509.ObjectIdentifier("2.23.133.2.3"), "id:20191023"),
    ]
)
Builder = Callable[[x509.CertificateBuilder], x509.CertificateBuilder]


def _root() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TPM maker EK root")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=365))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


ROOT, ROOT_KEY = _root()
EK_KEY = rsa.generate_private_key(65537, 2048)


def _key_encipherment() -> x509.KeyUsage:
    return x509.KeyUsage(False, False, True, False, False, False, False, False, False)


def _ek_certificate(
    change: Builder = lambda b: b, signer: ec.EllipticCurvePrivateKey = ROOT_KEY
) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ROOT.subject)
        .public_key(EK_KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DirectoryName(TPM_ATTRIBUTES)]), True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ROOT_KEY.public_key()), False
        )
    )
    return change(builder).sign(signer, hashes.SHA256()).public_bytes(Encoding.DER)


def _register(certificate: bytes, at: datetime = NOW) -> None:
    register_endorsement_key(public=None, certificate=certificate, trust=EkTrust((ROOT,)), at=at)


def _tcg(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(_key_encipherment(), True)
        .add_extension(x509.ExtendedKeyUsage([TCG_EK_CERTIFICATE]), False)
    )


def test_a_tcg_shaped_ek_certificate_verifies() -> None:
    _register(_ek_certificate(_tcg))
    _register(_ek_certificate())  # BC, KU and EKU absent: older makers' certificates


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (
            lambda b: b.add_extension(x509.BasicConstraints(ca=True, path_length=0), True),
            "not a CA certificate",
        ),
        (
            lambda b: b.add_extension(
                x509.KeyUsage(False, False, True, False, False, True, False, False, False), True
            ),
            "does not sign certificates",
        ),
        (
            lambda b: b.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False
            ),
            "does not name tcg-kp-EKCertificate",
        ),
        (
            lambda b: b.add_extension(
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"
                ),
                critical=True,
            ),
            "critical extension",
        ),
        (
            lambda b: b.add_extension(
                x509.CertificatePolicies(
                    [x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"), None)]
                ),
                critical=True,
            ),
            "critical extension",
        ),
    ],
    ids=["ca", "key-cert-sign", "server-auth-eku", "unknown-critical", "critical-policies"],
)
def test_ek_profile_violations_are_refused(change: Builder, why: str) -> None:
    with pytest.raises(EndorsementKeyRefused) as refused:
        _register(_ek_certificate(change))
    assert refused.value.code == "provisioning.tpm_ek_refused"
    assert why in f"{refused.value.message} {refused.value.details.get('reason', '')}"


def test_time_and_signature_are_checked() -> None:
    good = _ek_certificate(_tcg)
    with pytest.raises(EndorsementKeyRefused, match="does not chain"):
        _register(good, at=NOW + timedelta(days=3651))  # expired
    with pytest.raises(EndorsementKeyRefused, match="does not chain"):
        _register(good, at=NOW - timedelta(days=2))  # not yet valid
    forged = _ek_certificate(_tcg, signer=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(EndorsementKeyRefused, match="does not chain"):
        _register(forged)


def _intermediate(
    eku: x509.ObjectIdentifier | None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EK issuing CA")]))
        .issuer_name(ROOT.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(NOW + timedelta(days=3000))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ROOT_KEY.public_key()), False
        )
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), False)
    return builder.sign(ROOT_KEY, hashes.SHA256()), key


@pytest.mark.parametrize(
    ("eku", "accepted"),
    [(None, True), (TCG_EK_CERTIFICATE, True), (ExtendedKeyUsageOID.SERVER_AUTH, False)],
    ids=["no-eku", "ek-eku", "server-auth-eku"],
)
def test_an_intermediate_ek_ca_may_name_the_ek_usage(
    eku: x509.ObjectIdentifier | None, accepted: bool
) -> None:
    intermediate, key = _intermediate(eku)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(intermediate.subject)
        .public_key(EK_KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=300))
        .add_extension(x509.SubjectAlternativeName([x509.DirectoryName(TPM_ATTRIBUTES)]), True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
    )
    certificate = _tcg(builder).sign(key, hashes.SHA256()).public_bytes(Encoding.DER)
    trust = EkTrust((ROOT,), (intermediate,))
    if accepted:
        register_endorsement_key(public=None, certificate=certificate, trust=trust, at=NOW)
        return
    with pytest.raises(EndorsementKeyRefused) as refused:
        register_endorsement_key(public=None, certificate=certificate, trust=trust, at=NOW)
    assert "tcg-kp-EKCertificate" in refused.value.details["reason"]
