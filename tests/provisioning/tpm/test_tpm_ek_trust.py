"""The EK trust store (`[provisioning] tpm_ek_roots`, `tpm_require_ek_certificate`) through
the whole platform, with swtpm's EK certificates (made by `swtpm_setup --create-ek-cert`,
signed by a swtpm local CA): an EK certificate chaining to the configured roots provisions;
one that does not -- another maker's roots, another TPM's certificate, or none when policy
requires one -- is refused with a precise code, audited, and changes nothing else.

The platform's clock is fixed at the time the test starts: swtpm's local CA is created when
the TPMs are manufactured (now), so the tests' usual fixed date may precede it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from devicetrust.device.tpm import TpmKeystore, answer_challenge, challenge_request
from devicetrust.domain import FixedClock
from devicetrust.domain.clock import SystemClock
from devicetrust.domain.errors import ConfigurationError, DeviceTrustError
from devicetrust.identity import UnitSpec
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    AttestationFailed,
    AttestationKind,
    ProvisioningResult,
    RegistrationRequest,
    RegistrationStatus,
)
from devicetrust.provisioning.tpm import EndorsementKeyUntrusted
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.settings import DatabaseSettings, ProvisioningSettings
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow
from devicetrust.vault import Vault
from tests.conftest import snapshot_tables
from tests.provisioning.tpm.conftest import Swtpm

AUDIT_TABLES = ("audit_log", "audit_head")
STATIC = Allocation(AllocationPolicy.STATIC, static_name="line-03-left-welding-12")  # type: ignore[arg-type]
PlatformFactory = Callable[..., Platform]


@pytest.fixture
def now_clock() -> FixedClock:
    return FixedClock(SystemClock().now())


@pytest.fixture
def swtpm_roots(swtpm_config: Path, device_tpm: Swtpm, tmp_path: Path) -> tuple[Path, Path]:
    """A directory holding the swtpm local root CA, and a bundle with its issuing CA."""
    del device_tpm  # manufacturing the device TPM creates the local CA
    roots = tmp_path / "ek-roots"
    roots.mkdir()
    shutil.copy(swtpm_config / "localca" / "swtpm-localca-rootca-cert.pem", roots / "swtpm.pem")
    return roots, swtpm_config / "localca" / "issuercert.pem"


@pytest.fixture
def stranger_root(tmp_path: Path) -> Path:
    """Another TPM maker's root, made by the openssl CLI."""
    bundle = tmp_path / "stranger.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
            str(tmp_path / "stranger.key"), "-subj", "/CN=Other TPM maker EK Root",
            "-days", "3650", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign", "-out", str(bundle),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return bundle


@pytest.fixture
def make_platform(db: Database, now_clock: FixedClock, tmp_path: Path) -> Iterator[PlatformFactory]:
    """make_platform(**provisioning settings): platforms sharing one database and CA."""
    vault = Vault.from_key(os.urandom(32))
    built: list[Platform] = []

    def make(**provisioning: object) -> Platform:
        settings = Settings(
            data_dir=tmp_path / "data",
            database=DatabaseSettings(url=db.url),
            provisioning=ProvisioningSettings(**provisioning),
        )
        platform = Platform(settings, clock=now_clock, vault=vault)
        built.append(platform)
        if len(built) == 1:
            platform.pki.init_hierarchy(actor="test")
        return platform

    yield make
    for platform in built:
        platform.close()


def _ek(tpm: Swtpm) -> tuple[bytes, bytes]:
    with TpmKeystore(tpm.tcti) as keystore:
        ek = keystore.endorsement_key()
    assert ek.certificate is not None
    return ek.public, ek.certificate


def _enroll(platform: Platform, public: bytes, certificate: bytes | None) -> str:
    pid = platform.identity.register(UnitSpec("arm-r7", {}), actor="factory").physical_id
    platform.provisioning.enrollments.create_individual(
        pid,
        AttestationKind.TPM,
        STATIC,
        tpm_ek_public=public,
        tpm_ek_certificate=certificate,
        require_hardware_key=True,
        actor="operator:test",
    )
    return pid


def _challenge(platform: Platform, tpm: Swtpm, pid: str) -> tuple[str, dict[str, str]]:
    with TpmKeystore(tpm.tcti) as keystore:
        issued = platform.provisioning.challenge(
            pid, AttestationKind.TPM, evidence=challenge_request(keystore), source="10.0.0.7"
        )
    return issued.challenge_id, issued.payload


def _answer(
    tpm: Swtpm, pid: str, challenge_id: str, payload: dict[str, str]
) -> RegistrationRequest:
    with TpmKeystore(tpm.tcti) as keystore:
        key = keystore.create_key()
        evidence = answer_challenge(keystore, key, challenge_id, payload)
        csr = keystore.create_csr(key, x509.Name([]))
    pem = csr.public_bytes(Encoding.PEM)
    return RegistrationRequest(pid, AttestationKind.TPM, pem, evidence, source="10.0.0.7")  # type: ignore[arg-type]


def _provision(platform: Platform, tpm: Swtpm, pid: str) -> ProvisioningResult:
    challenge_id, payload = _challenge(platform, tpm, pid)
    return platform.provisioning.provision(_answer(tpm, pid, challenge_id, payload))


def _refused_once(
    db: Database, action: str, code: str, attempt: Callable[[], object]
) -> DeviceTrustError:
    """Run a refused `attempt`: its code, one audit entry saying so, nothing else changed."""
    before = snapshot_tables(db)
    with pytest.raises(AttestationFailed) as refused:
        attempt()
    assert refused.value.code == code
    assert refused.value.status == 401
    after = snapshot_tables(db)
    for table in before:
        if table not in AUDIT_TABLES:
            assert after[table] == before[table], table
    assert len(after["audit_log"]) == len(before["audit_log"]) + 1
    with db.read() as session:
        last = session.execute(
            select(AuditEntryRow).order_by(AuditEntryRow.seq.desc()).limit(1)
        ).scalar_one()
    assert (last.action, last.details["code"]) == (action, code)
    return refused.value


def test_ek_certificate_chaining_to_the_configured_roots_provisions(
    make_platform: PlatformFactory, device_tpm: Swtpm, swtpm_roots: tuple[Path, Path]
) -> None:
    roots, intermediates = swtpm_roots
    platform = make_platform(tpm_ek_roots=roots, tpm_ek_intermediates=intermediates)
    pid = _enroll(platform, *_ek(device_tpm))

    result = _provision(platform, device_tpm, pid)

    assert result.status is RegistrationStatus.ASSIGNED
    assert result.logical_name == "line-03-left-welding-12"


def test_ek_certificate_of_another_maker_is_refused_at_the_challenge(
    make_platform: PlatformFactory, device_tpm: Swtpm, stranger_root: Path, db: Database
) -> None:
    platform = make_platform(tpm_ek_roots=stranger_root)
    pid = _enroll(platform, *_ek(device_tpm))

    refused = _refused_once(
        db,
        "provisioning.challenge_refused",
        "provisioning.tpm_ek_untrusted",
        lambda: _challenge(platform, device_tpm, pid),
    )
    assert isinstance(refused, EndorsementKeyUntrusted)
    assert "does not chain to a trusted EK CA" in refused.message


def test_trust_withdrawn_after_the_challenge_refuses_the_registration(
    make_platform: PlatformFactory,
    device_tpm: Swtpm,
    swtpm_roots: tuple[Path, Path],
    stranger_root: Path,
    db: Database,
) -> None:
    roots, intermediates = swtpm_roots
    trusting = make_platform(tpm_ek_roots=roots, tpm_ek_intermediates=intermediates)
    pid = _enroll(trusting, *_ek(device_tpm))
    challenge_id, payload = _challenge(trusting, device_tpm, pid)
    request = _answer(device_tpm, pid, challenge_id, payload)
    distrusting = make_platform(tpm_ek_roots=stranger_root)

    _refused_once(
        db,
        "provisioning.refused",
        "provisioning.tpm_ek_untrusted",
        lambda: distrusting.provisioning.provision(request),
    )
    # the challenge was not burnt: under the trusting policy the same answer still provisions
    assert trusting.provisioning.provision(request).status is RegistrationStatus.ASSIGNED


def test_another_tpms_ek_certificate_does_not_vouch_for_this_ek(
    make_platform: PlatformFactory,
    device_tpm: Swtpm,
    other_tpm: Swtpm,
    swtpm_roots: tuple[Path, Path],
    db: Database,
) -> None:
    roots, intermediates = swtpm_roots
    platform = make_platform(tpm_ek_roots=roots, tpm_ek_intermediates=intermediates)
    public, _ = _ek(device_tpm)
    _, others_certificate = _ek(other_tpm)  # chains to the trusted CA, for another key
    pid = _enroll(platform, public, others_certificate)

    refused = _refused_once(
        db,
        "provisioning.challenge_refused",
        "provisioning.tpm_ek_untrusted",
        lambda: _challenge(platform, device_tpm, pid),
    )
    assert "another key" in refused.message


def test_policy_decides_for_an_ek_without_certificate(
    make_platform: PlatformFactory,
    device_tpm: Swtpm,
    swtpm_roots: tuple[Path, Path],
    db: Database,
) -> None:
    roots, intermediates = swtpm_roots
    strict = make_platform(
        tpm_ek_roots=roots, tpm_ek_intermediates=intermediates, tpm_require_ek_certificate=True
    )
    public, _ = _ek(device_tpm)
    pid = _enroll(strict, public, None)
    _refused_once(
        db,
        "provisioning.challenge_refused",
        "provisioning.tpm_ek_certificate_required",
        lambda: _challenge(strict, device_tpm, pid),
    )

    lenient = make_platform(tpm_ek_roots=roots, tpm_ek_intermediates=intermediates)
    assert _provision(lenient, device_tpm, pid).status is RegistrationStatus.ASSIGNED


# -- configuration -------------------------------------------------------------------------


def _provisioning_of(tmp_path: Path, **provisioning: object) -> ConfigurationError:
    settings = Settings(
        data_dir=tmp_path / "data",
        provisioning=ProvisioningSettings(**provisioning),
    )
    platform = Platform(settings, vault=Vault.from_key(os.urandom(32)))
    try:
        with pytest.raises(ConfigurationError) as err:
            platform.provisioning  # noqa: B018
        return err.value
    finally:
        platform.close()


def test_requiring_a_certificate_without_roots_stops_the_start(tmp_path: Path) -> None:
    refused = _provisioning_of(tmp_path, tpm_require_ek_certificate=True)
    assert refused.code == "config.tpm_ek_roots_missing"


def test_an_empty_or_unreadable_trust_store_stops_the_start(
    tmp_path: Path, stranger_root: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _provisioning_of(tmp_path, tpm_ek_roots=empty).code == "config.tpm_ek_trust_empty"
    assert (
        _provisioning_of(tmp_path, tpm_ek_roots=tmp_path / "missing.pem").code
        == "config.tpm_ek_trust_invalid"
    )
    key_only = tmp_path / "keys"
    key_only.mkdir()
    # the private key openssl made beside the stranger's root: a key, not a certificate
    shutil.copy(stranger_root.with_suffix(".key"), key_only / "maker.pem")
    assert _provisioning_of(tmp_path, tpm_ek_roots=key_only).code == "config.tpm_ek_trust_invalid"
