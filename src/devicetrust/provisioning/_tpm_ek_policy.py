"""The EK policy of TPM attestation: which TPM manufacturers' EK CAs the operator trusts, and
whether an enrollment without an EK certificate may attest at all.

At each TPM challenge and registration (`TpmAttestation.new_challenge` / `authorize`), before
any credential is made or checked, `EkPolicy.check(enrollment, at)` decides, in this order:

1. the enrollment holds an EK certificate?
   no  -> `require_certificate`: refused                provisioning.tpm_ek_certificate_required
          else accepted on the factory's word (it read the EK public area from the TPM)
2. the certificate verifies against `trust` at `at` (`_tpm_endorsement`: DER X.509, a path
   through the configured intermediates only to a configured root -- signatures, validity
   of every certificate, CA basic constraints and keyCertSign on the issuers, the EK
   profile on the leaf) and carries the same key as the enrolled EK public area
                                                         provisioning.tpm_ek_untrusted

So an EK certificate registered before a vendor's CA was distrusted (or pasted into an
enrollment through the API without a check) cannot be used once the trust store says no.
Without a trust store nothing is verified here (`EkPolicy` is then absent); requiring a
certificate without a trust store is a configuration error, not a silent acceptance.

`load_certificates` reads the trust store the composition root names in the settings
(`[provisioning] tpm_ek_roots`, `tpm_ek_intermediates`): one PEM bundle, or a directory whose
`*.pem`, `*.crt` and `*.cer` files (PEM or DER) are read. Never accepts an empty store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from devicetrust.domain.errors import ConfigurationError
from devicetrust.provisioning._tpm_endorsement import EkTrust, register_endorsement_key
from devicetrust.provisioning._tpm_errors import EndorsementKeyRefused, EndorsementKeyUntrusted
from devicetrust.provisioning.records import Enrollment

MAX_TRUST_FILE_BYTES = 1024 * 1024
_CERT_SUFFIXES = (".pem", ".crt", ".cer")


@dataclass(frozen=True, slots=True)
class EkPolicy:
    """`trust`: the EK CAs; `require_certificate`: refuse enrollments without an EK
    certificate. See the module docstring for the order of checks."""

    trust: EkTrust
    require_certificate: bool = False

    def check(self, enrollment: Enrollment, at: datetime) -> None:
        certificate = enrollment.tpm_ek_certificate
        if certificate is None:
            if self.require_certificate:
                raise EndorsementKeyUntrusted(
                    "provisioning.tpm_ek_certificate_required",
                    "policy requires an EK certificate and this unit's enrollment has none",
                )
            return
        try:
            register_endorsement_key(
                public=enrollment.tpm_ek_public, certificate=certificate, trust=self.trust, at=at
            )
        except EndorsementKeyRefused as exc:
            raise EndorsementKeyUntrusted(
                "provisioning.tpm_ek_untrusted",
                f"the enrolled EK certificate is refused: {exc.message}",
            ) from exc


def ek_policy(
    roots: Path | None, intermediates: Path | None, *, require_certificate: bool
) -> EkPolicy | None:
    """The policy the settings describe, or None (no trust store: nothing is verified)."""
    if roots is None:
        if require_certificate or intermediates is not None:
            raise ConfigurationError(
                "config.tpm_ek_roots_missing",
                "provisioning.tpm_require_ek_certificate and tpm_ek_intermediates need "
                "provisioning.tpm_ek_roots (the TPM manufacturers' EK CA certificates)",
            )
        return None
    trust = EkTrust(
        roots=tuple(load_certificates(roots)),
        intermediates=tuple(load_certificates(intermediates)) if intermediates else (),
    )
    return EkPolicy(trust, require_certificate=require_certificate)


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, or of the certificate files of a directory."""
    files = (
        sorted(p for p in path.iterdir() if p.suffix.lower() in _CERT_SUFFIXES and p.is_file())
        if path.is_dir()
        else [path]
    )
    found: list[x509.Certificate] = []
    for file in files:
        found.extend(_read(file))
    if not found:
        raise ConfigurationError("config.tpm_ek_trust_empty", f"no certificate in {path}")
    return found


def _read(file: Path) -> list[x509.Certificate]:
    try:
        if file.stat().st_size > MAX_TRUST_FILE_BYTES:
            raise ConfigurationError("config.tpm_ek_trust_invalid", f"{file} is too large")
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            "config.tpm_ek_trust_invalid", f"cannot read {file}: {exc.strerror}"
        ) from exc
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except (ValueError, x509.InvalidVersion) as exc:
        raise ConfigurationError(
            "config.tpm_ek_trust_invalid", f"{file} holds no readable X.509 certificate"
        ) from exc
