"""Steps 5-6 of `devicetrust demo`: a compromised-device drill, then the checks an auditor
would run (the audit chain, the security posture).

Quarantine is the operator's one action: the CA revokes the unit's certificate
(privilegeWithdrawn), the gateway drops its live session within a fraction of a second,
and device authentication refuses it from then on, each refusal in the audit log.
"""

from __future__ import annotations

from datetime import datetime

from devicetrust.cli import output
from devicetrust.cli.audit import head_hash
from devicetrust.cli.demo_factory import enroll, make_units, pool
from devicetrust.cli.demo_narration import DemoFailed, ms, wait_until
from devicetrust.cli.demo_scenario import Scene, short_serial
from devicetrust.cli.posture import show_fleet
from devicetrust.domain.audit import AuditRecord
from devicetrust.domain.events import EventType
from devicetrust.domain.lifecycle import DeviceState

DRILL_POOL = "line-03-right-welding-{01..99}"
REFUSAL_ACTION = "device.auth_refused"


def quarantine_drill(scene: Scene) -> None:
    """Step 5: a third unit is quarantined; its connection drops and it is refused after."""
    platform = scene.platform
    scene.narrator.step(
        5,
        "Drill: a compromised unit is cut off",
        "a third unit (C) goes into service; the operator suspects its key leaked and "
        "quarantines it: its certificate is revoked, its connection dropped, its reconnection "
        "refused",
    )
    (unit,) = make_units(platform, ["C"], actor=scene.actor, tpms=scene.tpms)
    scene.units["C"] = unit
    enroll(platform, unit, pool(DRILL_POOL), actor=scene.actor)
    device = scene.device(unit)
    provisioned = device.provision()
    device.connect()
    device.publish("telemetry", {"torque": [1.1, 2.0, 0.7], "temp_c": 39.0})
    scene.narrator.said(
        f"unit C {unit.physical_id} is {provisioned.logical_name}, connected, reporting"
    )
    device.watch_closed()
    platform.identity.set_state(
        unit.physical_id,
        DeviceState.QUARANTINED,
        actor=scene.actor,
        reason="drill: suspected key compromise",
    )
    closed = device.wait_closed()
    quarantined_at = _changed_at(scene, unit.physical_id)
    serial = device.certificate_serial
    revoked = wait_until(
        "the revocation of C's certificate",
        lambda: platform.pki.get_certificate(serial).revoked_at,
    )
    reason = platform.pki.get_certificate(serial).revocation_reason
    refused = device.refused_reconnect()
    audited = wait_until(
        "the audit entry of C's refused reconnection",
        lambda: _refusals(scene, unit.physical_id),
    )
    output.fields(
        f"unit C {unit.physical_id}: quarantined",
        [
            ("state", platform.identity.get_physical(unit.physical_id).state.value),
            ("connection", f"closed by the gateway "
             f"{ms((closed.at - quarantined_at).total_seconds())} after the quarantine"),
            ("certificate", f"serial {short_serial(serial)} revoked "
             f"({reason.value if reason else '?'}) at {output.when(revoked)}"),
            ("reconnecting", f"at once, on its own: refused, CONNACK 0x{refused:02X}"),
            ("audit", f"{len(audited)} {REFUSAL_ACTION} entr{'y' if len(audited) == 1 else 'ies'}"
             f", why: {audited[-1].details.get('code', '?')}"),
        ],
        style="green",
    )
    if refused == 0:
        raise DemoFailed("the quarantined unit was let back in")


def audit_and_posture(scene: Scene) -> None:
    """Step 6: the audit log's hash chain verifies; the fleet's security posture."""
    platform = scene.platform
    scene.narrator.step(
        6,
        "Audit and posture",
        "every change above is in the audit log, SHA-256 hash-chained; the posture report "
        "checks the security measures from live state (ETSI EN 303 645, NISTIR 8259A)",
    )
    result = platform.audit.verify()
    if result.first_break is not None:
        raise DemoFailed(
            f"audit log broken at entry {result.first_break.seq}: {result.first_break.reason}"
        )
    output.fields(
        "audit verify: the chain is intact",
        [
            ("entries", result.count),
            ("head seq", result.head_seq),
            ("head hash", head_hash(platform.audit, result.head_seq)),
        ],
        style="green",
    )
    show_fleet(platform.policy.posture.fleet())


def _changed_at(scene: Scene, physical_id: str) -> datetime:
    """When the unit's last state change was committed (its audit entry)."""
    changes = [
        entry.occurred_at
        for entry in scene.platform.audit.entries(subject=physical_id, limit=1000)
        if entry.action == EventType.DEVICE_STATE_CHANGED
    ]
    if not changes:
        raise DemoFailed("the quarantine is not in the audit log")
    return changes[-1]


def _refusals(scene: Scene, physical_id: str) -> list[AuditRecord] | None:
    found = [
        entry
        for entry in scene.platform.audit.entries(subject=physical_id, limit=1000)
        if entry.action == REFUSAL_ACTION
    ]
    return found or None
