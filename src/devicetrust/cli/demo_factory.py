"""The demo's factory line and line operator: units get a physical identity, a birth key made
in their own keystore and a birth certificate; the operator enrolls them for a name.

Each unit's keystore is a `file:` keystore of the device SDK under
`<data_dir>/devices/<physical id>/keystore.json` (AES-256-GCM). Its store key is sealed by
the unit's own simulated TPM when swtpm is installed (`demo_tpm`), else derived from a
device secret drawn here from the OS CSPRNG, held in memory for this run and wiped at the
end: either way the keys on disk can never be read in clear after the run. Next to it,
`birth.pem` is the unit's public birth certificate. The factory signs the birth CSR with the
key inside the keystore; only public keys and certificates ever leave it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from devicetrust.cli.demo_tpm import UnitTpms, keystore_uri
from devicetrust.device.keystore import DeviceKey, Keystore, open_keystore
from devicetrust.domain.ids import LogicalName
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import UnitSpec
from devicetrust.pki import CaRole, IssuedCertificate, IssueRequest, Profile
from devicetrust.provisioning import Allocation, AllocationPolicy, AttestationKind, Enrollment
from devicetrust.runtime import Platform

MODEL = "RA-7 welding arm"
BIRTH_LABEL = "birth"
SECRET_BYTES = 32


@dataclass
class Unit:
    """A unit as the factory made it: its registry record, its open keystore, its birth
    certificate, and the folder it lives in."""

    letter: str
    physical: PhysicalIdentity
    folder: Path
    keystore: Keystore
    birth: IssuedCertificate
    secret: bytearray = field(repr=False)  # empty when a TPM seals the keystore
    tpm: bool = False

    @property
    def physical_id(self) -> str:
        return self.physical.physical_id

    @property
    def birth_key(self) -> DeviceKey:
        return self.keystore.key(BIRTH_LABEL)

    @property
    def birth_file(self) -> Path:
        return self.folder / "birth.pem"

    def close(self) -> None:
        self.keystore.close()
        self.secret[:] = bytes(len(self.secret))


def make_units(
    platform: Platform, letters: list[str], *, actor: str, tpms: UnitTpms
) -> list[Unit]:
    """Register one unit per letter (one batch), create each one's birth key in its keystore
    (sealed by its own TPM when `tpms` can start one, else by a device secret), and have the
    manufacturing CA certify them (one batch)."""
    tags = [secrets.token_hex(3).upper() for _ in letters]
    specs = [
        UnitSpec(model=MODEL, hardware_serials={"controller": f"CTL-{t}", "arm": f"ARM-{t}"})
        for t in tags
    ]
    registered = platform.identity.register_batch(specs, actor=actor)
    opened: list[_Opened] = []
    requests: list[IssueRequest] = []
    try:
        for unit in registered:
            folder = platform.settings.data_dir / "devices" / unit.physical_id
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            made = _open_keystore(unit, folder, tpms.start_for(unit.physical_id))
            opened.append(made)
            key = made.store.create_key(BIRTH_LABEL)
            csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
            pem = csr.sign(key.signer(), hashes.SHA256()).public_bytes(
                serialization.Encoding.PEM
            )
            requests.append(IssueRequest(pem, unit.physical_id, Profile.BIRTH))
        births = platform.pki.issue_batch(requests, actor=actor)
    except BaseException:
        for made in opened:
            made.store.close()
            made.secret[:] = bytes(len(made.secret))
        raise
    units: list[Unit] = []
    manufacturing_chain = platform.pki.chain_pem(CaRole.MANUFACTURING)
    for letter, made, birth in zip(letters, opened, births, strict=True):
        ready = Unit(letter, made.unit, made.folder, made.store, birth, made.secret, made.tpm)
        ready.birth_file.write_text(
            birth.certificate.public_bytes(serialization.Encoding.PEM).decode()
            + manufacturing_chain
        )
        units.append(ready)
    return units


@dataclass
class _Opened:
    unit: PhysicalIdentity
    folder: Path
    store: Keystore
    secret: bytearray = field(repr=False)
    tpm: bool


def _open_keystore(unit: PhysicalIdentity, folder: Path, tcti: str | None) -> _Opened:
    path = folder / "keystore.json"
    if tcti is not None:
        return _Opened(unit, folder, open_keystore(keystore_uri(path, tcti)), bytearray(), True)
    secret = bytearray(secrets.token_bytes(SECRET_BYTES))
    try:
        store = open_keystore(keystore_uri(path, None), secret=secret)
    except BaseException:
        secret[:] = bytes(len(secret))
        raise
    return _Opened(unit, folder, store, secret, False)


def enroll(
    platform: Platform,
    unit: Unit,
    allocation: Allocation,
    *,
    actor: str,
    replaces: str | None = None,
) -> Enrollment:
    """The operator's individual x509 enrollment of `unit`: its birth key, by fingerprint.
    Its operational TLS key lives in the file keystore, not in a TPM, so the secure baseline
    (`hardware_key_required`) would refuse it: the operator relaxes that rule for this one
    enrollment, for a day, with the reason on the audit log."""
    enrollment = platform.provisioning.enrollments.create_individual(
        unit.physical_id,
        AttestationKind.X509,
        allocation,
        actor=actor,
        key_fingerprint=unit.birth.spki_sha256,
        replaces=replaces,
    )
    allow_software_keys(platform, enrollment.name, reason=SOFTWARE_KEY_REASON, actor=actor)
    return enrollment


def allow_software_keys(platform: Platform, enrollment: str, *, reason: str, actor: str) -> None:
    """The conscious, audited relaxation of `hardware_key_required` for one enrollment, for
    a day: its units' keys live in software keystores (the demo's files, the simulator's
    memory), which the secure baseline refuses."""
    platform.policy.relax(
        "hardware_key_required", False, f"enrollment:{enrollment}", reason=reason,
        expires="1d", actor=actor,
    )  # fmt: skip


SOFTWARE_KEY_REASON = (
    "demo: the arm's TLS key is in its encrypted file keystore; OpenSSL 3.0 here cannot do "
    "TLS with a TPM key"
)


def static_name(name: str) -> Allocation:
    return Allocation(AllocationPolicy.STATIC, static_name=LogicalName(name))


def pool(pattern: str) -> Allocation:
    return Allocation(AllocationPolicy.POOL, pool_pattern=pattern)
