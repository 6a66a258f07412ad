"""The posture report: per device and for the fleet, which security measures hold, mapped
to ETSI EN 303 645 and NISTIR 8259A, with every relaxation in force or recently ended.

    report = PostureReports(db, clock)
    report.device("c2c38155-b0d2-48b6-82fd-22fe3b316224").to_json()
    report.fleet().to_json()

Computed at every call from live state (`facts.py`); nothing in it is stored or typed in.
Read-only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import InvalidInput
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.policy import _rows
from devicetrust.policy.model import BASELINE, SecurityPolicy
from devicetrust.policy.posture import standards
from devicetrust.policy.posture.facts import (
    DeviceFacts,
    gather_devices,
    gather_platform,
    unit_count,
)
from devicetrust.policy.posture.measures import (
    Measure,
    Result,
    Status,
    assess_device,
    assess_platform,
    worst,
)
from devicetrust.policy.relaxations import Relaxation
from devicetrust.policy.resolution import resolve
from devicetrust.policy.scopes import FLEET
from devicetrust.provisioning.records import AttestationKind
from devicetrust.store.database import Database
from devicetrust.store.models_security_policy import PolicyRelaxationRow
from devicetrust.store.registry import physical_row

RECENT = timedelta(days=30)
MAX_DEVICES = 10_000


@dataclass(frozen=True, slots=True)
class DevicePosture:
    facts: DeviceFacts
    measures: tuple[Result, ...]
    etsi: tuple[standards.Rollup, ...]
    nist: tuple[standards.Rollup, ...]

    @property
    def status(self) -> Status:
        return worst(r.status for r in self.measures)

    def summary_json(self) -> dict[str, Any]:
        f = self.facts
        return {
            "physical_id": f.physical_id,
            "logical_name": f.logical_name,
            "state": f.state.value,
            "status": self.status.value,
            "measures": {r.measure.value: r.status.value for r in self.measures},
        }

    def to_json(self) -> dict[str, Any]:
        f = self.facts
        now = f.effective.evaluated_at
        return {
            **self.summary_json(),
            "evaluated_at": now.isoformat(),
            "model": f.model,
            "enrollment": f.enrollment,
            "attestation": f.attestation.value if f.attestation else None,
            "certificates": [
                {
                    "serial": c.serial,
                    "not_before": c.not_before.isoformat(),
                    "not_after": c.not_after.isoformat(),
                    "key": f"{c.algorithm}/{c.size}",
                }
                for c in f.certificates
            ],
            "measures": [r.to_json() for r in self.measures],
            "etsi_en_303_645": [r.to_json() for r in self.etsi],
            "nistir_8259a": [r.to_json() for r in self.nist],
            "relaxations": [r.to_json(now) for r in f.effective.relaxations],
        }


@dataclass(frozen=True, slots=True)
class MeasureSummary:
    measure: Measure
    status: Status
    counts: dict[Status, int]
    platform: tuple[Result, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "measure": self.measure.value,
            "status": self.status.value,
            "devices": {s.value: self.counts.get(s, 0) for s in Status},
            "platform": [r.to_json() for r in self.platform],
        }


@dataclass(frozen=True, slots=True)
class FleetPosture:
    evaluated_at: datetime
    units: int
    devices: tuple[DevicePosture, ...]
    platform: tuple[Result, ...]
    measures: tuple[MeasureSummary, ...]
    etsi: tuple[standards.Rollup, ...]
    nist: tuple[standards.Rollup, ...]
    relaxations: tuple[Relaxation, ...]

    @property
    def status(self) -> Status:
        return worst(m.status for m in self.measures)

    @property
    def truncated(self) -> bool:
        return len(self.devices) < self.units

    def to_json(self) -> dict[str, Any]:
        now = self.evaluated_at
        return {
            "evaluated_at": now.isoformat(),
            "status": self.status.value,
            "units": self.units,
            "measures": [m.to_json() for m in self.measures],
            "etsi_en_303_645": [r.to_json() for r in self.etsi],
            "nistir_8259a": [r.to_json() for r in self.nist],
            "relaxations": [r.to_json(now) for r in self.relaxations],
            "devices": [d.summary_json() for d in self.devices],
            "devices_truncated": self.truncated,
        }


def _device_posture(facts: DeviceFacts) -> DevicePosture:
    results = assess_device(facts)
    return DevicePosture(facts, results, standards.etsi(results), standards.nist(results))


class PostureReports:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        baseline: SecurityPolicy = BASELINE,
        recent: timedelta = RECENT,
    ) -> None:
        self._db = db
        self._clock = clock
        self._baseline = baseline
        self._recent = recent

    def device(self, physical_id: str) -> DevicePosture:
        now = self._clock.now()
        with self._db.read() as session:
            pid = physical_row(session, physical_id).id
            facts = gather_devices(session, now, self._baseline, physical_ids=[pid])
        return _device_posture(facts[0])

    def key_attested(self, physical_id: str, spki_sha256: str) -> bool:
        """Whether `spki_sha256` is the key a TPM certified when the unit was provisioned
        under an enrollment that binds the CSR key to the TPM: the `hardware_attested`
        argument of `check_key` for a device presenting that key."""
        now = self._clock.now()
        with self._db.read() as session:
            pid = physical_row(session, physical_id).id
            facts = gather_devices(session, now, self._baseline, physical_ids=[pid])[0]
        return (
            facts.attestation is AttestationKind.TPM
            and facts.require_hardware_key
            and facts.provisioned_spki is not None
            and facts.provisioned_spki == spki_sha256.strip().lower().removeprefix("sha256:")
        )

    def fleet(self, *, max_devices: int = MAX_DEVICES) -> FleetPosture:
        """Every unit (the per-device list is cut at `max_devices`; the counts are not)."""
        if not 1 <= max_devices <= MAX_DEVICES:
            raise InvalidInput("request.invalid_page", f"max_devices is 1-{MAX_DEVICES}")
        now = self._clock.now()
        since = now - self._recent
        t = PolicyRelaxationRow
        with self._db.read() as session:
            units = unit_count(session)
            facts = gather_devices(session, now, self._baseline)
            fleet_effective = resolve(
                _rows.layers(session, [FLEET.key]),
                _rows.live_relaxations(session, now, [FLEET.key]),
                now,
                baseline=self._baseline,
            )
            platform = assess_platform(gather_platform(session), fleet_effective)
            rows = session.execute(
                select(t)
                .where(
                    ((t.revoked_at.is_(None)) & (t.expires_at >= since)) | (t.revoked_at >= since)
                )
                .order_by(t.created_at.desc(), t.id.desc())
            ).scalars()
            relaxations = tuple(_rows.to_relaxation(row) for row in rows)
        devices = [_device_posture(f) for f in facts]
        live = [d for d in devices if d.facts.state is not DeviceState.DECOMMISSIONED]
        every = [r for d in live for r in d.measures] + list(platform)
        summaries = []
        for measure in Measure:
            counts = Counter(r.status for d in live for r in d.measures if r.measure is measure)
            mine = tuple(r for r in platform if r.measure is measure)
            summaries.append(
                MeasureSummary(
                    measure,
                    worst([*counts, *(r.status for r in mine)]),
                    dict(counts),
                    mine,
                )
            )
        return FleetPosture(
            evaluated_at=now,
            units=units,
            devices=tuple(devices[:max_devices]),
            platform=platform,
            measures=tuple(summaries),
            etsi=standards.etsi(every),
            nist=standards.nist(every),
            relaxations=relaxations,
        )
