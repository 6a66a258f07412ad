"""X.509 attestation: the device proves possession of its birth-certificate key by signing a
server nonce, and its birth certificate chains to the manufacturing CA.

Wire format (sans-I/O; `challenge_message` is what a device signs):

    POST challenge -> {"challenge_id", "nonce"} (single use, `CHALLENGE_TTL`)
    evidence = {"challenge_id", "birth_chain": PEM (leaf first), "signature": base64url}
    message  = "devicetrust-provisioning-x509-v1\n" challenge_id "\n" nonce "\n" physical_id
               "\n" hex(SHA-256(csr bytes as sent))
    signature: ECDSA with SHA-256/384/512 by curve (P-256/P-384/P-521), Ed25519, or RSA
               PKCS#1 v1.5 with SHA-256, by the birth-certificate key

The message binds the nonce to the unit and to the operational CSR, so a captured signature
can neither be replayed nor moved onto another CSR.

`authorize` checks, in this order: the evidence parses (malformed_evidence); the challenge
was issued by us for this unit and method, is unused and unexpired (challenge_invalid); the
birth chain verifies with `DeviceCertVerifier` against the enrollment's CA (group) or every
manufacturing CA (individual) as trust anchor, including revocation (birth_cert_refused);
it names the requesting unit (wrong_device); for an individual enrollment its key is the
enrolled one (key_not_enrolled); the signature verifies with that key (signature_invalid).

Never writes (the service burns the challenge), never trusts a presented intermediate, and
never builds or signs a certificate.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from devicetrust.domain.clock import Clock
from devicetrust.domain.ids import PhysicalId
from devicetrust.pki import CaRecord, CaRole, StatusSource
from devicetrust.pki.csr import spki_sha256
from devicetrust.pki.verify import CertificateRefused, DeviceCertVerifier
from devicetrust.provisioning.errors import AttestationFailed, MalformedEvidence, RefusalReason
from devicetrust.provisioning.methods import (
    AttestationContext,
    Authorization,
    NewChallenge,
    RegistrationRequest,
    SingleUse,
    StoredChallenge,
)
from devicetrust.provisioning.records import AttestationKind, Enrollment, EnrollmentKind
from devicetrust.provisioning.symmetric import b64url, b64url_decode

MESSAGE_LABEL = "devicetrust-provisioning-x509-v1"
NONCE_BYTES = 32
MAX_CHAIN_BYTES = 64 * 1024
_MAX_KEPT_VERIFIERS = 256
_CURVE_HASH: dict[str, hashes.HashAlgorithm] = {
    "secp256r1": hashes.SHA256(),
    "secp384r1": hashes.SHA384(),
    "secp521r1": hashes.SHA512(),
}


def challenge_message(challenge_id: str, nonce: str, physical_id: str, csr: bytes) -> bytes:
    """The bytes a device signs with its birth key."""
    digest = hashlib.sha256(csr).hexdigest()
    return f"{MESSAGE_LABEL}\n{challenge_id}\n{nonce}\n{physical_id}\n{digest}".encode()


class CaDirectory(Protocol):
    """What the method needs of the CA (`PkiService` provides it)."""

    def list_cas(self) -> list[CaRecord]: ...

    def status_source(self) -> StatusSource: ...


class X509Method:
    """`AttestationMethod` (with challenges) for x509 enrollments."""

    def __init__(self, cas: CaDirectory, clock: Clock) -> None:
        self._cas = cas
        self._clock = clock
        # A group enrollment's verifier, by the id of its CA. A CA's certificate never
        # changes once created, so its verifier (anchor + status source) can be kept; what
        # can change -- revocation of anything in the chain -- is read on every attempt.
        self._verifiers: dict[str, DeviceCertVerifier] = {}

    @property
    def kind(self) -> AttestationKind:
        return AttestationKind.X509

    def new_challenge(
        self,
        physical_id: PhysicalId,
        enrollment: Enrollment,
        evidence: Mapping[str, Any] | None = None,
    ) -> NewChallenge:
        """A fresh 256-bit nonce (the device sends nothing with its request)."""
        nonce = b64url(secrets.token_bytes(NONCE_BYTES))
        return NewChallenge(payload={"nonce": nonce}, expected=nonce.encode("ascii"))

    def authorize(
        self,
        request: RegistrationRequest,
        enrollment: Enrollment,
        context: AttestationContext,
    ) -> Authorization:
        challenge_id, chain_pem, signature = _evidence(request)
        challenge = _live_challenge(context, challenge_id, request.physical_id)
        leaf = self._verified_leaf(chain_pem, enrollment, request.physical_id)
        key_sha256 = spki_sha256(leaf.public_key())  # type: ignore[arg-type]
        if enrollment.kind is EnrollmentKind.INDIVIDUAL and not hmac.compare_digest(
            key_sha256, enrollment.key_fingerprint or ""
        ):
            raise AttestationFailed(
                RefusalReason.KEY_NOT_ENROLLED,
                "the birth certificate's key is not the enrolled one",
            )
        nonce = challenge.expected.decode("ascii")
        message = challenge_message(challenge_id, nonce, request.physical_id, request.csr)
        _check_signature(leaf, signature, message)
        return Authorization(
            physical_id=request.physical_id,
            enrollment_id=enrollment.enrollment_id,
            method=self.kind,
            single_use=SingleUse("challenge", challenge_id, challenge.expires_at),
            attested_key_sha256=key_sha256,
            audit={"enrollment": enrollment.name, "birth_serial": f"{leaf.serial_number:x}"},
        )

    def _verified_leaf(
        self, chain_pem: bytes, enrollment: Enrollment, physical_id: PhysicalId
    ) -> x509.Certificate:
        verifier = self._verifier(enrollment.ca_id)
        try:
            device = verifier.verify_pem(chain_pem)
        except CertificateRefused as exc:
            raise AttestationFailed(
                RefusalReason.BIRTH_CERT_REFUSED,
                f"the birth certificate is refused: {exc.message}",
                cert_code=exc.code,
            ) from exc
        if device.physical_id != physical_id:
            raise AttestationFailed(
                RefusalReason.WRONG_DEVICE, "the birth certificate names another unit"
            )
        return device.chain[0]

    def _verifier(self, ca_id: str | None) -> DeviceCertVerifier:
        """The verifier anchored at the CA `ca_id`, or at every manufacturing CA (read anew
        each time: one may have been added since)."""
        if ca_id is not None:
            kept = self._verifiers.get(ca_id)
            if kept is not None:
                return kept
        anchors = [
            ca.certificate
            for ca in self._cas.list_cas()
            if (ca.ca_id == ca_id) or (ca_id is None and ca.role is CaRole.MANUFACTURING)
        ]
        if not anchors:
            raise AttestationFailed(
                RefusalReason.BIRTH_CERT_REFUSED, "no manufacturing CA to verify against"
            )
        verifier = DeviceCertVerifier(anchors, [], self._cas.status_source(), self._clock)
        if ca_id is not None:
            if len(self._verifiers) >= _MAX_KEPT_VERIFIERS:
                self._verifiers.clear()
            self._verifiers[ca_id] = verifier
        return verifier


def _evidence(request: RegistrationRequest) -> tuple[str, bytes, bytes]:
    evidence = request.evidence
    challenge_id = evidence.get("challenge_id")
    chain = evidence.get("birth_chain")
    signature = evidence.get("signature")
    if not (
        isinstance(challenge_id, str)
        and 0 < len(challenge_id) <= 64
        and isinstance(chain, str)
        and 0 < len(chain) <= MAX_CHAIN_BYTES
        and isinstance(signature, str)
        and 0 < len(signature) <= 2048
    ):
        raise MalformedEvidence(
            "x509 evidence is challenge_id, birth_chain (PEM) and signature (base64url)"
        )
    try:
        raw_signature = b64url_decode(signature)
    except (ValueError, binascii.Error) as exc:
        raise MalformedEvidence("the signature is not base64url") from exc
    return challenge_id, chain.encode("ascii", errors="replace"), raw_signature


def _live_challenge(
    context: AttestationContext, challenge_id: str, physical_id: PhysicalId
) -> StoredChallenge:
    challenge = context.challenge(challenge_id)
    ok = (
        challenge is not None
        and not challenge.used
        and challenge.method is AttestationKind.X509
        and challenge.physical_id == physical_id
        and context.now() < challenge.expires_at
    )
    if not ok or challenge is None:
        raise AttestationFailed(
            RefusalReason.CHALLENGE_INVALID,
            "the challenge is unknown, used, expired or for another unit",
        )
    return challenge


def _check_signature(leaf: x509.Certificate, signature: bytes, message: bytes) -> None:
    key = leaf.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            algorithm = _CURVE_HASH.get(key.curve.name)
            if algorithm is None:
                raise InvalidSignature
            key.verify(signature, message, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise InvalidSignature
    except InvalidSignature as exc:
        raise AttestationFailed(
            RefusalReason.SIGNATURE_INVALID,
            "the signature over the challenge does not verify with the birth key",
        ) from exc
