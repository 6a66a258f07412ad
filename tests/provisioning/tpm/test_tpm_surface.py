"""The public surface of TPM attestation (server and device SDK), and how both behave
without the `tpm` extra. Needs no TPM."""

from __future__ import annotations

import sys

import pytest

import devicetrust.device.tpm as device_tpm
import devicetrust.provisioning.tpm as server_tpm
from devicetrust.device.tpm import TpmKeystore, TpmUnavailable
from devicetrust.provisioning.tpm import TpmSupportMissing, make_challenge


def test_server_exports() -> None:
    assert sorted(server_tpm.__all__) == [
        "CertifiedKey",
        "EkPolicy",
        "EkTrust",
        "EndorsementKey",
        "EndorsementKeyRefused",
        "EndorsementKeyUntrusted",
        "TpmAttestation",
        "TpmChallenge",
        "TpmSupportMissing",
        "default_public_area",
        "ek_policy",
        "load_certificates",
        "make_challenge",
        "register_endorsement_key",
        "verify_certify",
    ]


def test_device_exports() -> None:
    assert sorted(device_tpm.__all__) == [
        "ActivationFailed",
        "Certification",
        "EndorsementKeyInfo",
        "EndorsementKeyType",
        "Quote",
        "Swtpm",
        "TpmKey",
        "TpmKeystore",
        "TpmOperationFailed",
        "TpmUnavailable",
        "answer_boot_challenge",
        "answer_challenge",
        "challenge_request",
    ]


def test_without_tpm2_pytss_both_sides_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tpm2_pytss", None)
    with pytest.raises(TpmSupportMissing) as server:
        make_challenge(b"\x00\x01", b"\x00\x01")
    assert server.value.code == "provisioning.tpm_unavailable"
    with pytest.raises(TpmUnavailable) as device:
        TpmKeystore("swtpm:host=127.0.0.1,port=1")
    assert device.value.code == "device.tpm_unavailable"


def test_unreachable_tpm_is_unavailable() -> None:
    pytest.importorskip("tpm2_pytss")
    with pytest.raises(TpmUnavailable):
        TpmKeystore("swtpm:host=127.0.0.1,port=1")
