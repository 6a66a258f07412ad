"""TPM 2.0 attestation end to end against swtpm: factory registration of the EK (certificate
verified against the swtpm local CA), credential activation binding the AK to the EK, the AK's
certification of the operational key, and a CSR signed in the TPM."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from devicetrust.device.tpm import ActivationFailed, EndorsementKeyType, TpmKeystore
from devicetrust.domain.clock import SystemClock
from devicetrust.domain.ids import PhysicalId
from devicetrust.pki.csr import spki_sha256, verify_csr
from devicetrust.provisioning.errors import AttestationFailed
from devicetrust.provisioning.records import AttestationKind
from devicetrust.provisioning.tpm import (
    EkTrust,
    TpmAttestation,
    register_endorsement_key,
    verify_certify,
)
from tests.provisioning.tpm.conftest import ChallengeBook, Swtpm, tpm_enrollment
from tests.provisioning.tpm.flows import device_attempt

EK_TYPES = [EndorsementKeyType.RSA_2048, EndorsementKeyType.ECC_P384]


@pytest.mark.parametrize("ek_type", EK_TYPES, ids=lambda t: t.name)
def test_factory_registers_the_ek_and_its_certificate(
    device_tpm: Swtpm, ek_trust: EkTrust, ek_type: EndorsementKeyType
) -> None:
    with TpmKeystore(device_tpm.tcti, ek_type=ek_type) as keystore:
        ek = keystore.endorsement_key()
    assert ek.certificate is not None  # swtpm_setup --create-ek-cert wrote it to NV

    registered = register_endorsement_key(
        public=ek.public,
        certificate=ek.certificate,
        trust=ek_trust,
        at=SystemClock().now(),
    )
    assert registered.public == ek.public
    assert registered.certificate == ek.certificate
    # a certificate alone gives the same public area: the TCG default template
    from_certificate = register_endorsement_key(
        public=None,
        certificate=ek.certificate,
        trust=ek_trust,
        at=SystemClock().now(),
    )
    assert from_certificate.public == ek.public
    assert from_certificate.name == registered.name


@pytest.mark.parametrize("ek_type", EK_TYPES, ids=lambda t: t.name)
def test_device_proves_its_ak_and_hardware_key(
    device_tpm: Swtpm, unit: PhysicalId, book: ChallengeBook, ek_type: EndorsementKeyType
) -> None:
    with TpmKeystore(device_tpm.tcti, ek_type=ek_type) as keystore:
        ek = keystore.endorsement_key()
    enrollment = tpm_enrollment(unit, ek.public)

    attempt = device_attempt(device_tpm, unit, enrollment, book, ek_type)
    authorization = TpmAttestation().authorize(attempt.request, enrollment, book)

    assert authorization.physical_id == unit
    assert authorization.method is AttestationKind.TPM
    assert authorization.enrollment_id == enrollment.enrollment_id
    assert authorization.single_use is not None
    assert authorization.single_use.value == attempt.challenge_id
    # the CSR's key is the key the TPM certified: the "hardware key" sign option holds
    verified = verify_csr(attempt.csr.public_bytes(Encoding.DER))
    assert authorization.attested_key_sha256 == verified.spki_sha256
    assert authorization.attested_key_sha256 == spki_sha256(attempt.csr.public_key())
    assert "secret" not in str(authorization.audit)


def test_the_ak_is_the_same_on_every_run(device_tpm: Swtpm) -> None:
    """A primary key of the endorsement hierarchy: nothing to store on the device."""
    with TpmKeystore(device_tpm.tcti) as keystore:
        first = keystore.attestation_key_public()
    with TpmKeystore(device_tpm.tcti) as keystore:
        assert keystore.attestation_key_public() == first


def test_every_object_and_session_is_flushed(
    device_tpm: Swtpm, unit: PhysicalId, book: ChallengeBook
) -> None:
    """Without a resource manager a leaked handle stays in the TPM: after a full flow and a
    refused activation, no transient object and no session is left."""
    tss = pytest.importorskip("tpm2_pytss")
    with TpmKeystore(device_tpm.tcti) as keystore:
        ek = keystore.endorsement_key()
    device_attempt(device_tpm, unit, tpm_enrollment(unit, ek.public), book)
    with TpmKeystore(device_tpm.tcti) as keystore, pytest.raises(ActivationFailed):
        keystore.activate_credential(b"\x00\x02ab", b"\x00\x02cd")

    esapi = tss.ESAPI(tss.TCTILdr.parse(device_tpm.tcti))
    try:
        loaded = []
        for first in (0x80000000, 0x02000000, 0x03000000):  # transient, loaded, saved sessions
            _, data = esapi.get_capability(tss.constants.TPM2_CAP.HANDLES, first, 64)
            loaded += [int(h) for h in data.data.handles]
    finally:
        esapi.close()
    assert loaded == []


def test_an_rsa_attestation_key_is_verified_too(device_tpm: Swtpm) -> None:
    """The server verifies RSASSA certifications as well (AKs of other device stacks are
    often RSA 2048); made here with tpm2-pytss directly, as such a stack would."""
    tss = pytest.importorskip("tpm2_pytss")
    flags, esys_tr = tss.constants.TPMA_OBJECT, tss.constants.ESYS_TR
    born = flags.FIXEDTPM | flags.FIXEDPARENT | flags.SENSITIVEDATAORIGIN | flags.USERWITHAUTH
    esapi = tss.ESAPI(tss.TCTILdr.parse(device_tpm.tcti))
    loaded = []
    try:
        ak, ak_public, *_ = esapi.create_primary(
            tss.types.TPM2B_SENSITIVE_CREATE(),
            tss.types.TPM2B_PUBLIC.parse(
                "rsa2048:rsassa-sha256:null",
                objectAttributes=born | flags.RESTRICTED | flags.SIGN_ENCRYPT,
            ),
            esys_tr.ENDORSEMENT,
        )
        loaded.append(ak)
        key, key_public, *_ = esapi.create_primary(
            tss.types.TPM2B_SENSITIVE_CREATE(),
            tss.types.TPM2B_PUBLIC.parse(
                "ecc256:ecdsa-sha256", objectAttributes=born | flags.SIGN_ENCRYPT
            ),
            esys_tr.OWNER,
        )
        loaded.append(key)
        nonce = b"n" * 32
        attest, signature = esapi.certify(
            key,
            ak,
            nonce,
            tss.types.TPMT_SIG_SCHEME(scheme=tss.constants.TPM2_ALG.NULL),
            session1=esys_tr.PASSWORD,
            session2=esys_tr.PASSWORD,
        )
    finally:
        for handle in loaded:
            esapi.flush_context(handle)
        esapi.close()

    certified = verify_certify(
        ak_public=bytes(ak_public.marshal()),
        key_public=bytes(key_public.marshal()),
        attest=bytes(attest),
        signature=bytes(signature.marshal()),
        nonce=nonce,
    )
    assert certified.name == bytes(key_public.get_name())
    with pytest.raises(AttestationFailed, match="not made for this challenge"):
        verify_certify(
            ak_public=bytes(ak_public.marshal()),
            key_public=bytes(key_public.marshal()),
            attest=bytes(attest),
            signature=bytes(signature.marshal()),
            nonce=b"m" * 32,
        )
