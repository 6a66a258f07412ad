"""Every way TPM attestation must refuse: another TPM's EK, another AK, a guessed secret, a
replayed or stale challenge, a tampered certification, a key swapped for one not in the TPM,
malformed evidence, and EK registrations that do not verify."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from devicetrust.device.tpm import (
    ActivationFailed,
    TpmKeystore,
    TpmOperationFailed,
    challenge_request,
)
from devicetrust.domain.clock import SystemClock
from devicetrust.domain.ids import PhysicalId, new_physical_id
from devicetrust.provisioning.errors import AttestationFailed, MalformedEvidence, RefusalReason
from devicetrust.provisioning.methods import CHALLENGE_TTL, RegistrationRequest
from devicetrust.provisioning.records import EnrollmentKind
from devicetrust.provisioning.tpm import (
    EkTrust,
    EndorsementKeyRefused,
    TpmAttestation,
    make_challenge,
    register_endorsement_key,
)
from tests.provisioning.tpm.conftest import ChallengeBook, Swtpm, tpm_enrollment
from tests.provisioning.tpm.flows import Attempt, device_attempt


def _ek(tpm: Swtpm) -> tuple[bytes, bytes]:
    with TpmKeystore(tpm.tcti) as keystore:
        ek = keystore.endorsement_key()
    assert ek.certificate is not None
    return ek.public, ek.certificate


def _ak(tpm: Swtpm) -> bytes:
    with TpmKeystore(tpm.tcti) as keystore:
        return keystore.attestation_key_public()


@pytest.fixture
def attempt(device_tpm: Swtpm, unit: PhysicalId, book: ChallengeBook) -> Attempt:
    return device_attempt(device_tpm, unit, tpm_enrollment(unit, _ek(device_tpm)[0]), book)


def _refused(
    request: RegistrationRequest,
    unit: PhysicalId,
    device_tpm: Swtpm,
    book: ChallengeBook,
    because: str | None = None,
) -> str:
    """The refusal's code, after checking its (log-only) message names the expected cause."""
    enrollment = tpm_enrollment(unit, _ek(device_tpm)[0])
    with pytest.raises(AttestationFailed, match=because) as refused:
        TpmAttestation().authorize(request, enrollment, book)
    return refused.value.code


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _flip_last_byte(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[-1] ^= 0x01
    return _b64(bytes(raw))


# -- credential activation ----------------------------------------------------------------


def test_challenge_for_another_tpms_ek_cannot_be_activated(
    device_tpm: Swtpm, other_tpm: Swtpm
) -> None:
    """The enrollment names the other unit's EK: this TPM cannot unwrap the seed."""
    challenge = make_challenge(_ek(other_tpm)[0], _ak(device_tpm))
    with TpmKeystore(device_tpm.tcti) as keystore, pytest.raises(ActivationFailed):
        keystore.activate_credential(challenge.credential_blob, challenge.encrypted_secret)


def test_challenge_for_another_ak_cannot_be_activated(device_tpm: Swtpm, other_tpm: Swtpm) -> None:
    """Sealed for an AK Name this TPM does not hold: the TPM releases nothing."""
    challenge = make_challenge(_ek(device_tpm)[0], _ak(other_tpm))
    with TpmKeystore(device_tpm.tcti) as keystore, pytest.raises(ActivationFailed):
        keystore.activate_credential(challenge.credential_blob, challenge.encrypted_secret)


def test_wrong_secret_is_refused(
    attempt: Attempt, unit: PhysicalId, device_tpm: Swtpm, book: ChallengeBook
) -> None:
    request = attempt.with_evidence(secret=_b64(b"\x00" * 32))
    assert _refused(request, unit, device_tpm, book, "does not match") == RefusalReason.TPM_REFUSED


def test_answer_with_another_ak_is_refused(
    attempt: Attempt, unit: PhysicalId, device_tpm: Swtpm, other_tpm: Swtpm, book: ChallengeBook
) -> None:
    """The secret is right but the AK presented is not the one it was sealed for."""
    request = attempt.with_evidence(ak_public=_b64(_ak(other_tpm)))
    assert _refused(request, unit, device_tpm, book, "does not match") == RefusalReason.TPM_REFUSED


# -- the challenge ------------------------------------------------------------------------


def test_replayed_challenge_is_refused(
    attempt: Attempt, unit: PhysicalId, device_tpm: Swtpm, book: ChallengeBook
) -> None:
    enrollment = tpm_enrollment(unit, _ek(device_tpm)[0])
    authorization = TpmAttestation().authorize(attempt.request, enrollment, book)
    assert authorization.single_use is not None
    book.burn(authorization.single_use.value)  # what the service does on success
    assert _refused(attempt.request, unit, device_tpm, book) == RefusalReason.CHALLENGE_INVALID


def test_expired_challenge_is_refused(
    attempt: Attempt, unit: PhysicalId, device_tpm: Swtpm, book: ChallengeBook
) -> None:
    book.advance(CHALLENGE_TTL + timedelta(seconds=1))
    assert _refused(attempt.request, unit, device_tpm, book) == RefusalReason.CHALLENGE_INVALID


def test_challenge_of_another_unit_or_unknown_is_refused(
    attempt: Attempt, device_tpm: Swtpm, book: ChallengeBook
) -> None:
    other_unit = new_physical_id()
    request = attempt.with_evidence()
    stolen = type(request)(other_unit, request.method, request.csr, request.evidence)
    assert _refused(stolen, other_unit, device_tpm, book) == RefusalReason.CHALLENGE_INVALID
    unknown = attempt.with_evidence(challenge_id="ch-999")
    assert _refused(unknown, attempt.request.physical_id, device_tpm, book) == (
        RefusalReason.CHALLENGE_INVALID
    )


# -- the certification --------------------------------------------------------------------


def test_tampered_certify_signature_is_refused(
    attempt: Attempt, unit: PhysicalId, device_tpm: Swtpm, book: ChallengeBook
) -> None:
    signature = attempt.request.evidence["certify_signature"]
    request = attempt.with_evidence(certify_signature=_flip_last_byte(signature))
    assert _refused(request, unit, device_tpm, book, "does not verify") == RefusalReason.TPM_REFUSED


def test_tampered_certify_info_is_refused(
    attempt: Attempt, unit: PhysicalId, device_tpm: Swtpm, book: ChallengeBook
) -> None:
    attest = attempt.request.evidence["certify_info"]
    request = attempt.with_evidence(certify_info=_flip_last_byte(attest))
    assert _refused(request, unit, device_tpm, book, "does not verify") == RefusalReason.TPM_REFUSED


def test_another_tpm_key_than_the_certified_one_is_refused(
    attempt: Attempt, unit: PhysicalId, device_tpm: Swtpm, book: ChallengeBook
) -> None:
    with TpmKeystore(device_tpm.tcti) as keystore:
        other_key = keystore.create_key()
    request = attempt.with_evidence(key_public=_b64(other_key.public))
    assert (
        _refused(request, unit, device_tpm, book, "not of the presented key")
        == RefusalReason.TPM_REFUSED
    )


def test_a_software_key_is_not_a_hardware_key(
    attempt: Attempt, unit: PhysicalId, device_tpm: Swtpm, book: ChallengeBook
) -> None:
    """A key the device made outside the TPM, wrapped as a TPM public area without fixedTPM."""
    tss = pytest.importorskip("tpm2_pytss")
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    flags = tss.constants.TPMA_OBJECT
    public = tss.types.TPM2B_PUBLIC.from_pem(
        pem, objectAttributes=flags.SIGN_ENCRYPT | flags.USERWITHAUTH
    )
    request = attempt.with_evidence(key_public=_b64(bytes(public.marshal())))
    assert _refused(request, unit, device_tpm, book, "attributes") == RefusalReason.TPM_REFUSED


@pytest.mark.parametrize(
    "field,value",
    [("secret", "not base64!"), ("ak_public", None), ("key_public", "AAAA"), ("certify_info", "")],
)
def test_malformed_evidence(
    attempt: Attempt,
    unit: PhysicalId,
    device_tpm: Swtpm,
    book: ChallengeBook,
    field: str,
    value: str | None,
) -> None:
    evidence = dict(attempt.request.evidence)
    if value is None:
        del evidence[field]
    else:
        evidence[field] = value
    request = type(attempt.request)(unit, attempt.request.method, attempt.request.csr, evidence)
    enrollment = tpm_enrollment(unit, _ek(device_tpm)[0])
    with pytest.raises(MalformedEvidence):
        TpmAttestation().authorize(request, enrollment, book)


def test_trailing_bytes_after_a_structure_are_refused(
    attempt: Attempt, unit: PhysicalId, device_tpm: Swtpm, book: ChallengeBook
) -> None:
    ak = base64.b64decode(attempt.request.evidence["ak_public"])
    request = attempt.with_evidence(ak_public=_b64(ak + b"\x00"))
    enrollment = tpm_enrollment(unit, _ek(device_tpm)[0])
    with pytest.raises(MalformedEvidence):
        TpmAttestation().authorize(request, enrollment, book)


def test_group_enrollment_or_no_ek_is_refused(device_tpm: Swtpm, unit: PhysicalId) -> None:
    with TpmKeystore(device_tpm.tcti) as keystore:
        evidence = challenge_request(keystore)
    for enrollment in (
        tpm_enrollment(unit, _ek(device_tpm)[0], kind=EnrollmentKind.GROUP),
        tpm_enrollment(unit, b"", tpm_ek_public=None),
        tpm_enrollment(new_physical_id(), _ek(device_tpm)[0]),
    ):
        with pytest.raises(AttestationFailed):
            TpmAttestation().new_challenge(unit, enrollment, evidence)


# -- factory registration of the EK -------------------------------------------------------


def test_ek_certificate_of_another_tpm_is_refused(
    device_tpm: Swtpm, other_tpm: Swtpm, ek_trust: EkTrust
) -> None:
    with pytest.raises(EndorsementKeyRefused):
        register_endorsement_key(
            public=_ek(device_tpm)[0],
            certificate=_ek(other_tpm)[1],
            trust=ek_trust,
            at=SystemClock().now(),
        )


def test_ek_certificate_from_an_untrusted_ca_is_refused(device_tpm: Swtpm) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone else's EK CA")])
    now = SystemClock().now()
    stranger = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    public, certificate = _ek(device_tpm)
    for trust in (EkTrust(roots=(stranger,)), None):
        with pytest.raises(EndorsementKeyRefused):
            register_endorsement_key(public=public, certificate=certificate, trust=trust, at=now)


def test_an_ak_is_not_an_ek(device_tpm: Swtpm) -> None:
    with pytest.raises(EndorsementKeyRefused):
        register_endorsement_key(
            public=_ak(device_tpm), certificate=None, trust=None, at=SystemClock().now()
        )
    with pytest.raises(EndorsementKeyRefused):
        register_endorsement_key(public=None, certificate=None, trust=None, at=SystemClock().now())


def test_garbage_challenge_is_a_typed_device_error(device_tpm: Swtpm) -> None:
    with TpmKeystore(device_tpm.tcti) as keystore, pytest.raises(TpmOperationFailed):
        keystore.activate_credential(b"\x00", b"\xff\xff")
