"""Fixtures of the measured-boot suite: the attestation service over the `db` fixture (SQLite
and PostgreSQL) with the fixed clock, registered units, and PCR values computed the way a TPM
extends them (so tests know the values a real TPM will hold without asking it)."""

from __future__ import annotations

import hashlib

import pytest

from devicetrust.attestation import AttestationService
from devicetrust.domain import FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.store.database import Database
from tests.operator_api import client, pid, platform, reader, writer  # noqa: F401 - fixtures

ACTOR = "operator:test"
ZERO = bytes(32)


def extended(*digests: bytes, start: bytes = ZERO) -> bytes:
    """The value of a SHA-256 PCR after extending `start` with `digests` in order
    (TPM 2.0 Part 1 §17.2: new = H(old || digest))."""
    value = start
    for digest in digests:
        value = hashlib.sha256(value + digest).digest()
    return value


def measurement(label: str) -> bytes:
    """A stand-in for a boot component's digest (firmware, boot loader, ...)."""
    return hashlib.sha256(label.encode()).digest()


def boot(**changes: bytes) -> dict[int, bytes]:
    """PCRs 0-7 of a unit booted on firmware 2.4.1 with secure boot; `pcr7=...` to change one."""
    pcrs = {i: ZERO for i in range(8)}
    pcrs[0] = extended(measurement("uefi 2.4.1"))
    pcrs[4] = extended(measurement("shim 15.8"), measurement("grub 2.12"))
    pcrs[7] = extended(measurement("secure boot on"), measurement("db: vendor ca"))
    for key, value in changes.items():
        pcrs[int(key.removeprefix("pcr"))] = value
    return pcrs


def hexed(pcrs: dict[int, bytes]) -> dict[str, str]:
    return {str(i): v.hex() for i, v in sorted(pcrs.items())}


@pytest.fixture
def attestation(db: Database, clock: FixedClock) -> AttestationService:
    return AttestationService(db, clock)


@pytest.fixture
def units(identity: IdentityService) -> list[PhysicalIdentity]:
    return identity.register_batch(
        [UnitSpec("arm-r7", {"controller": f"C-{n:04d}"}) for n in range(2)], actor="factory"
    )
