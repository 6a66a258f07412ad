"""`devicetrust demo` run as a user runs it (the installed command, a fresh folder, free
ports), then every step's outcome read back from the database it left -- never from what
it printed -- and the folder, the output and the temporary directory searched for key
material in clear. A second run in the same folder must work as well (re-run safety).
"""

from __future__ import annotations

import base64
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest

from devicetrust.cli.demo_tpm import UnitTpms
from devicetrust.domain.audit import AuditRecord
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.events import AuditLog, DeliveryStatus
from devicetrust.ingest.feedback import FeedbackQueue
from devicetrust.ingest.records import FeedbackStatus
from devicetrust.ingest.store import MessageStore
from devicetrust.pki import CaRole, Profile
from devicetrust.runtime import Platform, Settings
from devicetrust.vault import Vault, generate_kek_text
from tests.cli.conftest import Cli, clean_env

NAME = "line-03-left-welding-12"
PER_UNIT = 5  # messages of each stream a unit sends (unit A adds its fault report)


@dataclass
class Run:
    cli: Cli
    kek: str
    tmp: Path
    output: str
    platform: Platform

    def units(self) -> tuple[str, str]:
        """Units A and B of the last run: the last two holders of the name."""
        bindings = self.platform.identity.history_of_logical(NAME)
        return bindings[-2].physical_id, bindings[-1].physical_id

    def unit_c(self) -> str:
        quarantined = [
            u.physical_id
            for u in self.platform.identity.list_physical(limit=1000)
            if u.state is DeviceState.QUARANTINED
        ]
        return quarantined[-1]


def _demo(cli: Cli, tmp: Path) -> str:
    done = cli.script("demo", TMPDIR=str(tmp))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("demo")
    tmp = tmp_path_factory.mktemp("demo-tmp")
    kek = generate_kek_text()
    cli = Cli(cwd=work, env={**clean_env(), "DEVICETRUST_KEK": kek})
    printed = _demo(cli, tmp)
    settings = Settings(data_dir=cli.data_dir)
    platform = Platform(settings, vault=Vault.from_encoded(kek), migrate=False)
    yield Run(cli, kek, tmp, printed, platform)
    platform.close()


def test_factory_made_units_with_keystores_and_birth_certificates(run: Run) -> None:
    pki = run.platform.pki
    manufacturing = pki.active_ca(CaRole.MANUFACTURING).ca_id
    for unit in (*run.units(), run.unit_c()):
        assert UUID(unit).version == 4
        (birth,) = pki.list_certificates(physical_id=unit, profile=Profile.BIRTH)
        assert birth.issuer_ca_id == manufacturing
        keystore = json.loads((run.cli.data_dir / "devices" / unit / "keystore.json").read_text())
        # sealed by the unit's own (simulated) TPM when swtpm is installed
        assert keystore["store_key"]["kind"] == ("tpm2" if UnitTpms.available() else "scrypt")
        registration = run.platform.provisioning.registration(unit)
        enrollment = run.platform.provisioning.enrollments.get(registration.enrollment_id)
        assert enrollment.attestation.value == "x509"
        assert enrollment.key_fingerprint == birth.spki_sha256


def test_unit_a_provisioned_reported_and_got_its_feedback(run: Run) -> None:
    a, _ = run.units()
    first = run.platform.identity.history_of_logical(NAME)[-2]
    assert (first.physical_id, first.started_by) == (a, f"device:{a}")
    store = MessageStore(run.platform.db, run.platform.clock)
    diagnostics = [m for m in store.diagnostics_of(NAME, limit=1000) if m.physical_id == a]
    # and its acknowledgement of the feedback, and the fault it reported
    assert len(diagnostics) == PER_UNIT + 2
    assert any(m.payload.get("ack") == "slow_down" for m in diagnostics)
    assert {m.logical_name for m in diagnostics} == {NAME}
    telemetry = store.telemetry_of(a)
    assert len(telemetry) == PER_UNIT
    assert all(len(m.payload["torque"]) == 6 for m in telemetry)  # torque per joint
    feedback = FeedbackQueue(run.platform.db, run.platform.clock).list_for(NAME)
    delivered = [f for f in feedback if f.physical_id == a]
    assert [f.status for f in delivered] == [FeedbackStatus.DELIVERED]


def test_a_was_replaced_by_b_revoked_and_refused(run: Run) -> None:
    a, b = run.units()
    identity = run.platform.identity
    assert identity.get_physical(a).state is DeviceState.DECOMMISSIONED
    assert identity.get_logical(NAME).physical_id == b
    old, new = identity.history_of_logical(NAME)[-2:]
    assert old.ended_at == new.started_at
    assert (old.end_reason, new.start_reason) == ("replaced", "replaced")
    certificates = run.platform.pki.list_certificates(physical_id=a, profile=Profile.DEVICE)
    assert certificates
    assert all(c.revoked_at is not None for c in certificates)
    assert {c.revocation_reason.name for c in certificates if c.revocation_reason} == {
        "superseded"
    }
    assert _refusals(run.platform.audit, a)  # its own reconnection, after the drop


def test_diagnostics_continue_under_the_name_and_telemetry_stays_per_unit(run: Run) -> None:
    a, b = run.units()
    store = MessageStore(run.platform.db, run.platform.clock)
    senders = Counter(str(m.physical_id) for m in store.diagnostics_of(NAME, limit=1000))
    assert senders[a] == PER_UNIT + 2  # and its feedback acknowledgement and its fault
    assert senders[b] == PER_UNIT
    for unit in (a, b):
        telemetry = store.telemetry_of(unit, limit=1000)
        assert len(telemetry) == PER_UNIT
        assert {m.physical_id for m in telemetry} == {unit}


def test_the_webhook_received_device_replaced(run: Run) -> None:
    deliveries = run.platform.dispatcher.list_deliveries(limit=1000)
    replaced = [d for d in deliveries if d.event_type == "device.replaced"]
    assert replaced
    assert {d.status for d in replaced} == {DeliveryStatus.DELIVERED}


def test_the_drill_quarantined_c_revoked_it_and_refused_it(run: Run) -> None:
    c = run.unit_c()
    assert run.platform.identity.get_physical(c).state is DeviceState.QUARANTINED
    certificates = run.platform.pki.list_certificates(physical_id=c, profile=Profile.DEVICE)
    assert [cert.revocation_reason.name if cert.revocation_reason else None
            for cert in certificates] == ["privilege_withdrawn"]
    refusals = _refusals(run.platform.audit, c)
    assert refusals
    # refused for its state or its revoked certificate, whichever is checked first
    assert {entry.details.get("code") for entry in refusals} <= {
        "auth.unit_quarantined",
        "auth.cert_revoked",
    }


def test_the_audit_chain_verifies(run: Run) -> None:
    assert run.platform.audit.verify().first_break is None
    done = run.cli.script("audit", "verify")
    assert done.returncode == 0, done.stderr


def test_no_key_material_in_clear(run: Run) -> None:
    """No clear private key (PEM, PKCS#8 or SEC1 DER) and no KEK in the data directory, the
    temporary directory or the output; CA keys are encrypted PEM."""
    raw_kek = base64.urlsafe_b64decode(run.kek + "=" * (-len(run.kek) % 4))
    forbidden = [
        b"-----BEGIN PRIVATE KEY-----",
        b"-----BEGIN EC PRIVATE KEY-----",
        bytes.fromhex("308187020100301306072a8648ce3d020106082a8648ce3d030107046d"),  # PKCS#8
        bytes.fromhex("307702010104"),  # SEC1 ECPrivateKey, P-256
        run.kek.encode(),
        raw_kek,
        raw_kek.hex().encode(),
        base64.b64encode(raw_kek),
    ]
    files = [p for p in (*run.cli.cwd.rglob("*"), *run.tmp.rglob("*")) if p.is_file()]
    assert not list(run.tmp.iterdir())  # the servers' one-time key files are gone
    blobs = {str(p): p.read_bytes() for p in files}
    blobs["output"] = run.output.encode()
    for where, blob in blobs.items():
        for pattern in forbidden:
            assert pattern not in blob, f"{pattern[:30]!r} in {where}"
    ca_keys = list((run.cli.data_dir / "ca").glob("*.key.pem"))
    assert ca_keys
    for key in ca_keys:
        assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_a_second_run_in_the_same_folder_takes_the_name_over(run: Run) -> None:
    before = run.units()
    _demo(run.cli, run.tmp)
    a, b = run.units()
    assert not {a, b} & set(before)
    bindings = run.platform.identity.history_of_logical(NAME)
    assert [x.physical_id for x in bindings[-4:]] == [*before, a, b]
    assert run.platform.identity.get_physical(before[1]).state is DeviceState.DECOMMISSIONED
    assert run.platform.audit.verify().first_break is None


def _refusals(audit: AuditLog, physical_id: str) -> list[AuditRecord]:
    return [
        e for e in audit.entries(subject=physical_id, limit=1000)
        if e.action == "device.auth_refused"
    ]


if sys.platform == "win32":  # pragma: no cover - the demo's keystores and servers are POSIX
    pytest.skip("POSIX only", allow_module_level=True)
