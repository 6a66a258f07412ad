"""Authentication by client certificate (mutual TLS): the presented chain goes through the
CA's `DeviceCertVerifier` (path, time, EKU, revocation: see `pki.verify`), then, in the
order of `rules`:

1-3. the chain verifies                        auth.cert_* (the verifier's precise code)
4.   the unit exists                           auth.unit_unknown
5.   the unit's limits allow mtls              auth.method_not_allowed
7.   the unit's state admits it                auth.unit_*
8.   a logical name the certificate carries is the one the unit holds now (or a former
     name of it)                               auth.identity_stale

With a `cache_ttl`, a verified chain (by the SHA-256 of the presented leaf, the only part
the verifier reads) is reused for up to that long; its notAfter is still checked each time.

The identity is the certificate's, never an id the client chose (an MQTT client id, a
header): entry points pass only the chain. The logical name returned is the registry's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from cryptography import x509

from devicetrust.deviceauth import rules
from devicetrust.deviceauth._cache import TtlCache
from devicetrust.deviceauth._unit import UnitStanding, check_claimed_name, unit_standing
from devicetrust.deviceauth.errors import CertificateNotAccepted, UnitUnknown
from devicetrust.deviceauth.records import AuthenticatedDevice, AuthMethod, LimitsFor
from devicetrust.domain.clock import Clock
from devicetrust.pki.serials import serial_text
from devicetrust.pki.verify import CertificateRefused, VerifiedDevice
from devicetrust.store.database import Database

CLAIMED_ID_PREFIX = "urn:uuid:"


class ChainVerifier(Protocol):
    """What this authenticator needs of `pki.verify.DeviceCertVerifier`."""

    def verify_der(self, chain: Sequence[bytes]) -> VerifiedDevice: ...

    def verify_pem(self, pem: bytes) -> VerifiedDevice: ...


def claimed_physical_id(chain: Sequence[bytes] | bytes) -> str | None:
    """For the audit of a refusal only: the physical id a presented leaf names, unverified
    and truncated; None when it names none readable."""
    try:
        if isinstance(chain, bytes):
            leaf = x509.load_pem_x509_certificates(chain)[0]
        else:
            leaf = x509.load_der_x509_certificate(chain[0])
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, IndexError, x509.ExtensionNotFound, x509.InvalidVersion):
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.lower().startswith(CLAIMED_ID_PREFIX):
            return uri[len(CLAIMED_ID_PREFIX) :][:64]
    return None


class CertificateAuthenticator:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        verifier: ChainVerifier,
        limits_for: LimitsFor,
        *,
        cache_ttl: timedelta = timedelta(0),
    ) -> None:
        self._db = db
        self._clock = clock
        self._verifier = verifier
        self._limits_for = limits_for
        self._cache: TtlCache[str, UnitStanding] = TtlCache(clock, cache_ttl)
        self._chains: TtlCache[bytes, VerifiedDevice] = TtlCache(clock, cache_ttl)

    def clear_cache(self) -> None:
        self._cache.clear()
        self._chains.clear()

    def authenticate(self, chain: Sequence[bytes] | bytes) -> AuthenticatedDevice:
        """`chain`: DER certificates leaf first (as a TLS stack hands them over), or one
        PEM blob."""
        now = self._clock.now()
        presented = chain if isinstance(chain, bytes) else b"".join(chain[:1])
        digest = hashlib.sha256(presented).digest()
        device = self._chains.get(digest, lambda: self._verify(chain))
        assert device is not None  # _verify raises instead of returning None
        serial = serial_text(device.serial)
        if now > device.not_after:  # a cached verification outlived its certificate
            raise CertificateNotAccepted(
                "auth.cert_expired", "the device certificate has expired", serial=serial
            )
        unit = self._cache.get(device.physical_id, lambda: self._load(device.physical_id))
        if unit is None:
            raise UnitUnknown("the certificate names no registered unit", serial=serial)
        rules.check_method(self._limits_for(unit.physical_id), AuthMethod.MTLS)
        rules.check_unit_state(unit.state)
        if device.logical_name is not None and device.logical_name != unit.logical_name:
            with self._db.read() as session:
                check_claimed_name(session, unit, device.logical_name)
        return AuthenticatedDevice(
            physical_id=unit.physical_id,
            logical_name=unit.logical_name,
            method=AuthMethod.MTLS,
            credential_id=serial,
            expires_at=device.not_after,
            authenticated_at=now,
        )

    def _load(self, physical_id: str) -> UnitStanding | None:
        with self._db.read() as session:
            return unit_standing(session, physical_id)

    def _verify(self, chain: Sequence[bytes] | bytes) -> VerifiedDevice:
        try:
            if isinstance(chain, bytes):
                return self._verifier.verify_pem(chain)
            return self._verifier.verify_der(chain)
        except CertificateRefused as exc:
            raise CertificateNotAccepted(exc.code, exc.message, **exc.details) from exc
