"""The device certificate verifier: from a presented chain to a `VerifiedDevice`, or a typed
refusal naming the precise reason (`pki._cert_refusals`).

Checks, in this order (each refusal names the first failed check):

1. decode     the chain is X.509 (PEM, DER or parsed), non-empty, at most
              `MAX_PRESENTED_CERTIFICATES`; the first certificate is the leaf   auth.cert_malformed
2. leaf time  notBefore <= now <= notAfter (RFC 5280 §4.1.2.5)   auth.cert_not_yet_valid / _expired
3. usage      not a CA; EKU present with id-kp-clientAuth; keyUsage present with
              digitalSignature (RFC 5280 §4.2.1.3, §4.2.1.12)                auth.cert_wrong_usage
4. identity   SAN/CN name exactly one canonical physical id (`_device_identity`)
                                                                            auth.cert_no_identity
5. path       `cryptography.x509.verification` client verifier over the trust roots
              and the configured intermediates at `clock.now()`: signatures, validity,
              basic constraints, name constraints, pathlen, EKU chaining    auth.cert_untrusted
              (or _expired / _not_yet_valid when a CA of the chain is out of its validity)
6. status     every certificate of the built chain except the trust anchor, against the
              `StatusSource` (the platform's own state): any REVOKED         auth.cert_revoked
              then any UNKNOWN                                               auth.cert_unknown

Steps 1-4 read only the presented leaf, so they can say precisely what is wrong with it;
nothing they read is returned until steps 5-6 have passed.

Steps 1-5 depend only on the leaf, the trust material and the time: `path_der` / `path_pem`
/ `path` stop there and return a `VerifiedPath` (not a device: it says when it holds and
which certificates still need their status), which a caller may keep for that leaf and
judge again with statuses read anew each time (`VerifiedPath.judged`, step 6). `verify*`
do both in one call, with the statuses from the `StatusSource`.

Never trusts a presented intermediate: certificates after the leaf are ignored and paths are
built from the configured intermediates only. `cryptography`'s path builder is exponential in
intermediates sharing one subject and key (x509-limbo
`pathological::pathological-chain-same-subject-same-key`: 1.8 s with 3 such certificates, 19 s
with 4), so a chain an unauthenticated party sends must not feed it candidates. Never returns a
device for a chain with an unknown or revoked certificate, and never a device whose leaf is
itself a trust anchor (its status could not be checked).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import ConfigurationError
from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.pki._cert_refusals import (
    CertExpired,
    CertificateRefused,
    CertMalformed,
    CertNoIdentity,
    CertNotYetValid,
    CertRevoked,
    CertUnknown,
    CertUntrusted,
    CertWrongUsage,
)
from devicetrust.pki._device_identity import device_identity
from devicetrust.pki.status import CertStatus, StatusInfo, StatusSource

__all__ = [
    "MAX_PRESENTED_CERTIFICATES",
    "CertExpired",
    "CertMalformed",
    "CertNoIdentity",
    "CertNotYetValid",
    "CertRevoked",
    "CertUnknown",
    "CertUntrusted",
    "CertWrongUsage",
    "CertificateRefused",
    "DeviceCertVerifier",
    "VerifiedDevice",
    "VerifiedPath",
    "VerifierConfigInvalid",
    "check_statuses",
    "path_policy",
]

# A device presents its leaf and its issuing CA; a few more allow an external PKI above.
MAX_PRESENTED_CERTIFICATES = 8
MAX_PEM_BYTES = 64 * 1024
# How far `_chain_time_fault` follows issuer names through the configured certificates.
_MAX_DIAGNOSIS_DEPTH = 8


class VerifierConfigInvalid(ConfigurationError):
    CODE: ClassVar[str] = "pki.verifier_config_invalid"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


@dataclass(frozen=True, slots=True)
class VerifiedDevice:
    """A device whose certificate chain passed every check, at the time it was checked."""

    physical_id: PhysicalId
    logical_name: LogicalName | None
    serial: int
    not_after: datetime
    chain: tuple[x509.Certificate, ...]  # leaf first, trust anchor last


@dataclass(frozen=True, slots=True)
class VerifiedPath:
    """Steps 1-5 passed for a leaf: it is a device certificate naming `physical_id` and
    chains (`chain`, leaf first, trust anchor last) to a trust root. It holds at any time
    between `valid_from` and `valid_until` (the validity all certificates of the chain
    share) under the same trust material. Not a verified device: `judged` (step 6) needs the
    status of each certificate below the anchor (`status_pairs`), read anew."""

    physical_id: PhysicalId
    logical_name: LogicalName | None
    chain: tuple[x509.Certificate, ...]
    valid_from: datetime
    valid_until: datetime

    def holds_at(self, now: datetime) -> bool:
        return self.valid_from <= now <= self.valid_until

    def status_pairs(self) -> list[tuple[x509.Certificate, x509.Certificate]]:
        """(certificate, its issuer) for each certificate below the anchor, leaf first."""
        return list(itertools.pairwise(self.chain))

    def judged(self, statuses: Sequence[StatusInfo]) -> VerifiedDevice:
        """Step 6 with the statuses of `status_pairs()`, in that order (`check_statuses`)."""
        check_statuses([cert.serial_number for cert, _ in self.status_pairs()], statuses)
        leaf = self.chain[0]
        return VerifiedDevice(
            physical_id=self.physical_id,
            logical_name=self.logical_name,
            serial=leaf.serial_number,
            not_after=leaf.not_valid_after_utc,
            chain=self.chain,
        )


def check_statuses(serials: Sequence[int], statuses: Sequence[StatusInfo]) -> None:
    """Step 6: the statuses of the certificates below a path's anchor (their `serials`,
    leaf first), in that order: any REVOKED refuses (the first one is named), then any
    UNKNOWN."""
    if len(statuses) != len(serials):
        raise ValueError(f"{len(serials)} statuses are needed, got {len(statuses)}")
    unknown: tuple[int, int] | None = None
    for position, (serial, info) in enumerate(zip(serials, statuses, strict=True)):
        if info.status is CertStatus.REVOKED:
            raise CertRevoked(
                "the leaf certificate is revoked"
                if position == 0
                else "a CA certificate of the chain is revoked",
                serial=f"{serial:x}",
                position=position,
                reason=info.reason.value if info.reason is not None else None,
            )
        if info.status is not CertStatus.GOOD and unknown is None:
            unknown = (position, serial)
    if unknown is not None:
        position, serial = unknown
        raise CertUnknown(
            "the certificate authority has no record of a certificate in the chain",
            serial=f"{serial:x}",
            position=position,
        )


def path_policy(store: Store, at: datetime) -> PolicyBuilder:
    """The path-validation policy devices are verified with (also run by the x509-limbo
    harness): `cryptography`'s defaults (webpki profile, max depth 8) at time `at`."""
    return PolicyBuilder().store(store).time(at)


class DeviceCertVerifier:
    """Verifies device certificate chains against the platform's trust roots and state."""

    def __init__(
        self,
        trust_roots: Sequence[x509.Certificate],
        intermediates: Sequence[x509.Certificate],
        status: StatusSource,
        clock: Clock,
    ) -> None:
        if not trust_roots:
            raise VerifierConfigInvalid("a device verifier needs at least one trust root")
        self._roots = tuple(trust_roots)
        self._store = Store(list(self._roots))
        self._intermediates = list(intermediates)
        self._status = status
        self._clock = clock

    def verify_pem(self, pem: bytes) -> VerifiedDevice:
        """A chain as concatenated PEM certificates, leaf first."""
        return self._judged(self.path_pem(pem))

    def verify_der(self, chain: Sequence[bytes]) -> VerifiedDevice:
        """A chain as DER certificates (as a TLS handshake delivers it), leaf first."""
        return self._judged(self.path_der(chain))

    def verify(self, chain: Sequence[x509.Certificate]) -> VerifiedDevice:
        """A parsed chain, leaf first; only the leaf is used (see the module docstring)."""
        return self._judged(self.path(chain))

    def path_pem(self, pem: bytes) -> VerifiedPath:
        """Steps 1-5 for concatenated PEM certificates, leaf first."""
        if len(pem) > MAX_PEM_BYTES:
            raise CertMalformed("the presented PEM chain is too large", size=len(pem))
        try:
            certificates = x509.load_pem_x509_certificates(pem)
        except (ValueError, x509.InvalidVersion) as exc:
            raise CertMalformed("the presented chain is not PEM X.509 certificates") from exc
        return self.path(certificates)

    def path_der(self, chain: Sequence[bytes]) -> VerifiedPath:
        """Steps 1-5 for DER certificates, leaf first."""
        _check_count(len(chain))
        certificates = []
        for position, der in enumerate(chain):
            try:
                certificates.append(x509.load_der_x509_certificate(der))
            except (ValueError, x509.InvalidVersion) as exc:
                raise CertMalformed(
                    "a presented certificate is not DER X.509", position=position
                ) from exc
        return self.path(certificates)

    def path(self, chain: Sequence[x509.Certificate]) -> VerifiedPath:
        """Steps 1-5 for a parsed chain, leaf first; only the leaf is used."""
        _check_count(len(chain))
        leaf = chain[0]
        now = self._clock.now()
        _check_leaf_time(leaf, now)
        _check_leaf_usage(leaf)
        physical_id, logical_name = device_identity(leaf)
        built = self._build_path(leaf, now)
        return VerifiedPath(
            physical_id=physical_id,
            logical_name=logical_name,
            chain=built,
            valid_from=max(c.not_valid_before_utc for c in built),
            valid_until=min(c.not_valid_after_utc for c in built),
        )

    def _judged(self, path: VerifiedPath) -> VerifiedDevice:
        return path.judged(
            [
                self._status.status_of(issuer, cert.serial_number)
                for cert, issuer in path.status_pairs()
            ]
        )

    def _build_path(self, leaf: x509.Certificate, now: datetime) -> tuple[x509.Certificate, ...]:
        verifier = path_policy(self._store, now).build_client_verifier()
        try:
            verified = verifier.verify(leaf, self._intermediates)
        except VerificationError as exc:
            fault = _chain_time_fault(leaf, [*self._intermediates, *self._roots], now)
            if fault is not None:
                raise fault from exc
            raise CertUntrusted(
                "no valid path from the certificate to a trust root",
                serial=f"{leaf.serial_number:x}",
                reason=str(exc)[:300],
            ) from exc
        built = tuple(verified.chain)
        if len(built) < 2:
            raise CertUntrusted(
                "the device certificate is itself a trust root", serial=f"{leaf.serial_number:x}"
            )
        return built


def _check_count(count: int) -> None:
    if count == 0:
        raise CertMalformed("no certificate presented")
    if count > MAX_PRESENTED_CERTIFICATES:
        raise CertMalformed(
            f"at most {MAX_PRESENTED_CERTIFICATES} certificates in a chain", count=count
        )


def _time_fault(cert: x509.Certificate, now: datetime, what: str) -> CertificateRefused | None:
    serial = f"{cert.serial_number:x}"
    if now < cert.not_valid_before_utc:
        return CertNotYetValid(
            f"the {what} is not valid yet",
            serial=serial,
            not_before=cert.not_valid_before_utc.isoformat(),
        )
    if now > cert.not_valid_after_utc:
        return CertExpired(
            f"the {what} has expired", serial=serial, not_after=cert.not_valid_after_utc.isoformat()
        )
    return None


def _check_leaf_time(leaf: x509.Certificate, now: datetime) -> None:
    fault = _time_fault(leaf, now, "device certificate")
    if fault is not None:
        raise fault


def _check_leaf_usage(leaf: x509.Certificate) -> None:
    serial = f"{leaf.serial_number:x}"
    try:
        extensions = leaf.extensions
    except ValueError as exc:  # duplicate or undecodable extensions
        raise CertMalformed("the certificate's extensions do not parse", serial=serial) from exc
    try:
        constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is not None and constraints.ca:
        raise CertWrongUsage("a CA certificate is not a device certificate", serial=serial)
    try:
        eku = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise CertWrongUsage("the certificate has no extendedKeyUsage", serial=serial) from exc
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise CertWrongUsage(
            "the certificate is not for client authentication",
            serial=serial,
            eku=[oid.dotted_string for oid in eku],
        )
    try:
        key_usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise CertWrongUsage("the certificate has no keyUsage", serial=serial) from exc
    if not key_usage.digital_signature:
        raise CertWrongUsage("the certificate's key usage lacks digitalSignature", serial=serial)


def _chain_time_fault(
    leaf: x509.Certificate, pool: Sequence[x509.Certificate], now: datetime
) -> CertificateRefused | None:
    """After a failed path build: is a CA above the leaf (by issuer name, through the
    configured certificates only) out of its validity? Only refines the refusal's code."""
    current = leaf
    for _ in range(_MAX_DIAGNOSIS_DEPTH):
        parents = [c for c in pool if c.subject == current.issuer and c is not current]
        if not parents:
            return None
        valid = [p for p in parents if _time_fault(p, now, "CA certificate") is None]
        if not valid:
            return _time_fault(parents[0], now, "CA certificate of the chain")
        current = valid[0]
        if current.subject == current.issuer:
            return None
    return None
