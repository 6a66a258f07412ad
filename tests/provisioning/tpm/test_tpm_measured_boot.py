"""Measured boot end to end against swtpm, with tpm2-tools as the peer we did not write: the
"firmware" extends PCRs (`tpm2_pcrextend`), the operator registers the golden values
`tpm2_pcrread` prints, the device quotes its PCRs with the AK during TPM provisioning, and
the security policy's `measured_boot_required` admits the known boot and refuses a changed
one. Without any policy change the hardware-key baseline holds for the TPM key."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from devicetrust.attestation import AttestationService, BootVerdict
from devicetrust.device.tpm import (
    TpmKeystore,
    answer_boot_challenge,
)
from devicetrust.domain import FixedClock
from devicetrust.domain.errors import Conflict, DeviceTrustError
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.pki import Hierarchy, PkiService
from devicetrust.policy import KeyAdmission, PolicyRefusal, PolicyService
from devicetrust.provisioning import (
    AttestationFailed,
    DataPlane,
    MalformedEvidence,
    ProvisioningService,
    RegistrationStatus,
)
from devicetrust.provisioning.boot_reattest import BootChallenge, BootReattestation
from devicetrust.provisioning.tpm import EkTrust, TpmAttestation
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.conftest import require_service, snapshot_tables
from tests.provisioning.conftest import ACTOR
from tests.provisioning.tpm.conftest import Swtpm
from tests.provisioning.tpm.service_flows import enroll_tpm, tpm_request

BOOT_PCRS = "0,1,2,3,4,5,6,7"
# What a boot chain would measure: firmware (0), its configuration (1), boot loader (4),
# secure-boot policy (7).
FIRMWARE = {0: "11" * 32, 1: "22" * 32, 4: "44" * 32, 7: "77" * 32}

Tools = Callable[..., str]


@pytest.fixture(scope="module")
def boot_tpm(start_swtpm: Callable[[str], Swtpm]) -> Swtpm:
    """A TPM of its own: these tests extend its PCRs, which no reset undoes."""
    return start_swtpm("measured-boot")


@pytest.fixture(scope="module")
def tools(boot_tpm: Swtpm) -> Tools:
    for tool in ("tpm2_pcrextend", "tpm2_pcrread"):
        if shutil.which(tool) is None:
            require_service("tpm2-tools", f"{tool} not on PATH (apt install tpm2-tools)")
    env = {**os.environ, "TPM2TOOLS_TCTI": boot_tpm.tcti}

    def run(*args: str) -> str:
        done = subprocess.run(
            args, check=False, env=env, capture_output=True, text=True, timeout=20
        )
        assert done.returncode == 0, f"{args[0]} failed: {done.stderr}"
        return done.stdout

    return run


@pytest.fixture(scope="module")
def firmware(tools: Tools) -> None:
    """The firmware measured itself, once per TPM."""
    for pcr, digest in FIRMWARE.items():
        tools("tpm2_pcrextend", f"{pcr}:sha256={digest}")


@pytest.fixture
def booted(firmware: None, tools: Tools) -> dict[str, str]:
    """The PCR values now, as tpm2_pcrread prints them (a test may extend them further)."""
    return read_pcrs(tools)


def read_pcrs(tools: Tools) -> dict[str, str]:
    """`tpm2_pcrread sha256:...` output (`  0 : 0x3D45...`) as {"0": "3d45..."}."""
    values: dict[str, str] = {}
    for line in tools("tpm2_pcrread", f"sha256:{BOOT_PCRS}").splitlines():
        index, sep, value = line.partition(":")
        if sep and index.strip().isdigit():
            values[index.strip()] = value.strip().removeprefix("0x").lower()
    assert sorted(values, key=int) == BOOT_PCRS.split(",")
    return values


@pytest.fixture
def attestation(db: Database, clock: FixedClock) -> AttestationService:
    return AttestationService(db, clock)


@pytest.fixture
def policy(db: Database, clock: FixedClock) -> PolicyService:
    return PolicyService(db, clock)


@pytest.fixture
def service(
    db: Database,
    clock: FixedClock,
    identity: IdentityService,
    pki: PkiService,
    hierarchy: Hierarchy,
    vault: Vault,
    policy: PolicyService,
    attestation: AttestationService,
) -> ProvisioningService:
    return ProvisioningService(
        db,
        clock,
        identity,
        pki,
        vault,
        methods=(TpmAttestation(quote_selection=attestation.quote_selection),),
        data_plane=DataPlane("mqtt.example", 8883),
        admission=KeyAdmission(policy, attestation),
    )


def test_known_boot_is_admitted_and_a_changed_boot_refused(
    service: ProvisioningService,
    policy: PolicyService,
    attestation: AttestationService,
    boot_tpm: Swtpm,
    ek_trust: EkTrust,
    booted: dict[str, str],
    tools: Tools,
    units: list[PhysicalIdentity],
    db: Database,
    clock: FixedClock,
) -> None:
    pid = units[0].physical_id
    enroll_tpm(service, boot_tpm, ek_trust, pid)
    attestation.add_golden("arm-fw-2.4.1", booted, actor=ACTOR)
    policy.set("fleet", {"measured_boot_required": True}, actor=ACTOR)

    result = service.provision(tpm_request(service, boot_tpm, pid)[0])
    assert (
        result.status is RegistrationStatus.ASSIGNED
    )  # hardware key baseline holds, no relaxation
    latest = attestation.latest(pid)
    assert latest is not None and latest.verdict is BootVerdict.MATCHED
    assert latest.golden == "arm-fw-2.4.1"
    assert {str(i): v.hex() for i, v in latest.pcrs.items()} == booted

    tools("tpm2_pcrextend", "4:sha256=" + "ee" * 32)  # another boot loader
    clock.advance(timedelta(minutes=1))
    changed = tpm_request(service, boot_tpm, pid)[0]
    before = snapshot_tables(db)
    with pytest.raises(PolicyRefusal) as refused:
        service.provision(changed)
    assert refused.value.code == "policy.boot_measurements_unknown"
    assert "differs in PCR 4" in refused.value.message
    after = snapshot_tables(db)
    grown = {t for t in after if after[t] != before[t]}
    assert grown == {"boot_attestations", "audit_log", "audit_head", "outbox"}
    latest = attestation.latest(pid)
    assert latest is not None and latest.verdict is BootVerdict.UNKNOWN

    # The operator vouches for the new boot loader: the same unit provisions again.
    attestation.add_golden("arm-fw-2.4.2", read_pcrs(tools), actor=ACTOR)
    assert service.provision(tpm_request(service, boot_tpm, pid)[0]).status is (
        RegistrationStatus.ASSIGNED
    )


def test_without_golden_values_the_boot_is_recorded_but_not_required(
    service: ProvisioningService,
    attestation: AttestationService,
    boot_tpm: Swtpm,
    ek_trust: EkTrust,
    booted: dict[str, str],
    units: list[PhysicalIdentity],
) -> None:
    pid = units[1].physical_id
    enroll_tpm(service, boot_tpm, ek_trust, pid)
    assert service.provision(tpm_request(service, boot_tpm, pid)[0]).status is (
        RegistrationStatus.ASSIGNED
    )
    latest = attestation.latest(pid)
    assert latest is not None and latest.verdict is BootVerdict.NO_GOLDEN


def test_reported_pcr_values_must_be_the_quoted_ones(
    service: ProvisioningService,
    attestation: AttestationService,
    boot_tpm: Swtpm,
    ek_trust: EkTrust,
    booted: dict[str, str],
    units: list[PhysicalIdentity],
) -> None:
    pid = units[2].physical_id
    enroll_tpm(service, boot_tpm, ek_trust, pid)
    attestation.add_golden("arm-fw-2.4.1", booted, actor=ACTOR)

    lying = tpm_request(service, boot_tpm, pid)[0]
    lying.evidence["pcr_values"] = dict(booted)  # the golden values, not the TPM's own
    lying.evidence["pcr_values"]["4"] = booted["4"][::-1]
    with pytest.raises(AttestationFailed) as refused:
        service.provision(lying)
    assert refused.value.code == "provisioning.tpm_refused"
    assert attestation.latest(pid) is None  # nothing judged from an unverified quote

    forged = tpm_request(service, boot_tpm, pid)[0]
    attest = bytearray(base64.b64decode(forged.evidence["quote_info"]))
    attest[-1] ^= 1  # the pcrDigest's last byte
    forged.evidence["quote_info"] = base64.b64encode(bytes(attest)).decode()
    with pytest.raises(AttestationFailed, match="quote_signature does not verify"):
        service.provision(forged)

    partial = tpm_request(service, boot_tpm, pid)[0]
    del partial.evidence["quote_signature"]
    with pytest.raises(MalformedEvidence):
        service.provision(partial)


def test_measured_boot_required_refuses_units_without_a_quote(
    service: ProvisioningService,
    policy: PolicyService,
    boot_tpm: Swtpm,
    ek_trust: EkTrust,
    units: list[PhysicalIdentity],
) -> None:
    pid = units[3].physical_id
    enroll_tpm(service, boot_tpm, ek_trust, pid)
    policy.set("fleet", {"measured_boot_required": True}, actor=ACTOR)
    request = tpm_request(service, boot_tpm, pid)[0]
    for name in ("quote_info", "quote_signature", "pcr_values"):
        del request.evidence[name]  # firmware that does not quote
    with pytest.raises(PolicyRefusal) as refused:
        service.provision(request)
    assert refused.value.code == "policy.measured_boot_required"


def test_a_software_key_needs_a_conscious_relaxation(
    service: ProvisioningService,
    policy: PolicyService,
    boot_tpm: Swtpm,
    ek_trust: EkTrust,
    units: list[PhysicalIdentity],
) -> None:
    """A TPM enrollment that does not bind the CSR key: the TPM proves the unit, but the
    certified key is not the one asking for a certificate."""
    pid = units[0].physical_id
    enroll_tpm(service, boot_tpm, ek_trust, pid, require_hardware_key=False)
    with pytest.raises(PolicyRefusal) as refused:
        service.provision(tpm_request(service, boot_tpm, pid, software_csr=True)[0])
    assert refused.value.code == "policy.hardware_key_required"

    policy.relax(
        "hardware_key_required", False, f"device:{pid}",
        reason="controller board without TPM-backed TLS until rev C", expires="7d", actor=ACTOR,
    )  # fmt: skip
    software = tpm_request(service, boot_tpm, pid, software_csr=True)[0]
    assert service.provision(software).status is RegistrationStatus.ASSIGNED


@pytest.fixture
def reattest(db: Database, clock: FixedClock, attestation: AttestationService) -> BootReattestation:
    return BootReattestation(db, clock, attestation)


def boot_evidence(tpm: Swtpm, issued: BootChallenge) -> dict[str, Any]:
    challenge = {
        "challenge_id": issued.challenge_id,
        "nonce": base64.b64encode(issued.nonce).decode(),
        "quote_pcrs": ",".join(map(str, issued.pcrs)),
    }
    with TpmKeystore(tpm.tcti) as keystore:
        return answer_boot_challenge(keystore, challenge)


def test_reattestation_needs_the_bound_ak_and_a_fresh_challenge(
    service: ProvisioningService,
    reattest: BootReattestation,
    attestation: AttestationService,
    boot_tpm: Swtpm,
    other_tpm: Swtpm,
    ek_trust: EkTrust,
    booted: dict[str, str],
    units: list[PhysicalIdentity],
    clock: FixedClock,
    db: Database,
) -> None:
    pid, stranger = units[0].physical_id, units[1].physical_id
    with pytest.raises(Conflict) as unbound:  # never provisioned by TPM attestation
        reattest.challenge(pid)
    assert unbound.value.code == "attestation.not_bound"

    enroll_tpm(service, boot_tpm, ek_trust, pid)
    service.provision(tpm_request(service, boot_tpm, pid)[0])
    attestation.add_golden("arm-fw-2.4.1", booted, actor=ACTOR)
    clock.advance(timedelta(seconds=1))

    issued = reattest.challenge(pid)
    evidence = boot_evidence(boot_tpm, issued)
    before = snapshot_tables(db)
    for tampered, code in (
        ({**boot_evidence(other_tpm, issued)}, "provisioning.tpm_refused"),  # another TPM's AK
        ({**evidence, "challenge_id": "not-a-challenge"}, "provisioning.challenge_invalid"),
        ({**evidence, "pcr_values": {**evidence["pcr_values"], "0": "00" * 32}},
         "provisioning.tpm_refused"),
    ):  # fmt: skip
        with pytest.raises(DeviceTrustError) as refused:
            reattest.submit(pid, tampered)
        assert refused.value.code == code
    with pytest.raises(AttestationFailed) as elsewhere:  # a challenge of another unit
        reattest.submit(stranger, evidence)
    assert elsewhere.value.code == "provisioning.challenge_invalid"
    after = snapshot_tables(db)
    assert {t for t in after if after[t] != before[t]} == {"audit_log", "audit_head"}

    attested = reattest.submit(pid, evidence)
    assert (attested.verdict, attested.golden) == (BootVerdict.MATCHED, "arm-fw-2.4.1")
    with pytest.raises(AttestationFailed) as replayed:
        reattest.submit(pid, evidence)
    assert replayed.value.code == "provisioning.challenge_invalid"

    clock.advance(timedelta(minutes=6))  # past the challenge's 5 minutes
    late = reattest.challenge(pid)
    late_evidence = boot_evidence(boot_tpm, late)
    clock.advance(timedelta(minutes=6))
    with pytest.raises(AttestationFailed):
        reattest.submit(pid, late_evidence)
