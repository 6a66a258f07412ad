"""Two simulated TPMs (swtpm) for the TPM attestation tests: `device_tpm`, the unit being
provisioned, and `other_tpm`, another unit's TPM. Both are manufactured by `swtpm_setup` with
RSA 2048 and ECC P-384 EKs and EK certificates issued by a swtpm local CA whose configuration
and state live in a temporary directory (nothing global is touched); that CA is the trusted
EK CA (`ek_trust`). Each TPM gets a fresh state directory and free loopback ports, and is
stopped at the end of the session.

Without swtpm, swtpm_setup or tpm2-pytss the tests skip on a laptop and fail in CI.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from devicetrust.device.tpm import Swtpm
from devicetrust.domain.ids import PhysicalId, new_physical_id
from devicetrust.provisioning.methods import CHALLENGE_TTL, NewChallenge, StoredChallenge
from devicetrust.provisioning.records import (
    Allocation,
    AllocationPolicy,
    AttestationKind,
    Enrollment,
    EnrollmentKind,
)
from devicetrust.provisioning.tpm import EkTrust
from tests.conftest import require_service

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def swtpm_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """swtpm_setup.conf and swtpm-localca config in a temporary directory: the local CA's
    keys and certificates are created there on first use."""
    for tool in ("swtpm", "swtpm_setup", "swtpm_localca"):
        if shutil.which(tool) is None:
            require_service("swtpm", f"{tool} not on PATH (apt install swtpm swtpm-tools)")
    try:
        import tpm2_pytss  # noqa: F401
    except ImportError as exc:
        require_service("tpm2-pytss", str(exc))
    root = tmp_path_factory.mktemp("swtpm")
    ca = root / "localca"
    ca.mkdir()
    (root / "swtpm-localca.conf").write_text(
        f"statedir = {ca}\nsigningkey = {ca}/signkey.pem\n"
        f"issuercert = {ca}/issuercert.pem\ncertserial = {ca}/certserial\n"
    )
    (root / "swtpm-localca.options").write_text(
        "--platform-manufacturer devicetrust-test\n--platform-version 2.1\n--platform-model swtpm\n"
    )
    (root / "swtpm_setup.conf").write_text(
        f"create_certs_tool = {shutil.which('swtpm_localca')}\n"
        f"create_certs_tool_config = {root}/swtpm-localca.conf\n"
        f"create_certs_tool_options = {root}/swtpm-localca.options\n"
        "active_pcr_banks = sha256\n"
    )
    return root


@pytest.fixture(scope="session")
def start_swtpm(swtpm_config: Path) -> Iterator[Callable[[str], Swtpm]]:
    started: list[Swtpm] = []

    def start(name: str) -> Swtpm:
        state = swtpm_config / f"state-{name}"
        state.mkdir()
        subprocess.run(
            [
                "swtpm_setup", "--tpm2", "--tpmstate", str(state), "--create-ek-cert",
                "--create-platform-cert", "--overwrite",
                "--config", str(swtpm_config / "swtpm_setup.conf"),
                "--logfile", str(swtpm_config / f"setup-{name}.log"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=60,
        )  # fmt: skip
        started.append(Swtpm(state))
        return started[-1]

    yield start
    for tpm in started:
        tpm.stop()


@pytest.fixture(scope="session")
def device_tpm(start_swtpm: Callable[[str], Swtpm]) -> Swtpm:
    return start_swtpm("device")


@pytest.fixture(scope="session")
def other_tpm(start_swtpm: Callable[[str], Swtpm]) -> Swtpm:
    return start_swtpm("other")


@pytest.fixture(scope="session")
def ek_trust(swtpm_config: Path, device_tpm: Swtpm) -> EkTrust:
    """The swtpm local CA (root and issuing CA), created when `device_tpm` was manufactured."""
    ca = swtpm_config / "localca"
    root = x509.load_pem_x509_certificate((ca / "swtpm-localca-rootca-cert.pem").read_bytes())
    issuer = x509.load_pem_x509_certificate((ca / "issuercert.pem").read_bytes())
    return EkTrust(roots=(root,), intermediates=(issuer,))


def tpm_enrollment(physical_id: PhysicalId, ek_public: bytes, **changes: object) -> Enrollment:
    fields: dict[str, object] = {
        "enrollment_id": "enr-tpm",
        "name": "tpm unit",
        "kind": EnrollmentKind.INDIVIDUAL,
        "attestation": AttestationKind.TPM,
        "allocation": Allocation(AllocationPolicy.MANUAL),
        "enabled": True,
        "created_at": NOW,
        "created_by": "factory",
        "physical_id": physical_id,
        "tpm_ek_public": ek_public,
        "require_hardware_key": True,
    }
    fields.update(changes)
    return Enrollment(**fields)  # type: ignore[arg-type]


@dataclass
class ChallengeBook:
    """The service's part the method relies on (`AttestationContext`): issued challenges,
    their expiry, and burning them after a successful provisioning."""

    now_at: datetime = NOW
    issued: dict[str, StoredChallenge] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.now_at

    def challenge(self, challenge_id: str) -> StoredChallenge | None:
        return self.issued.get(challenge_id)

    def nonce_used(self, nonce: str) -> bool:
        return False

    def record(self, physical_id: PhysicalId, new: NewChallenge) -> str:
        challenge_id = f"ch-{len(self.issued) + 1}"
        self.issued[challenge_id] = StoredChallenge(
            challenge_id=challenge_id,
            physical_id=physical_id,
            method=AttestationKind.TPM,
            expected=new.expected,
            expires_at=self.now_at + CHALLENGE_TTL,
            used=False,
        )
        return challenge_id

    def burn(self, challenge_id: str) -> None:
        old = self.issued[challenge_id]
        self.issued[challenge_id] = StoredChallenge(
            old.challenge_id, old.physical_id, old.method, old.expected, old.expires_at, True
        )

    def advance(self, delta: timedelta) -> None:
        self.now_at += delta


@pytest.fixture
def book() -> ChallengeBook:
    return ChallengeBook()


@pytest.fixture
def unit() -> PhysicalId:
    return new_physical_id()
