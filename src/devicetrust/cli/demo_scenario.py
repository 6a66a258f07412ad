"""Steps 1-4 of `devicetrust demo`: the factory, unit A on the line, its replacement by unit
B, and what the platform kept of it.

The operator's actions call the platform's services (as the API and the CLI do); the units
act only over the network, through the device SDK (`demo_device`): HTTPS provisioning with
their birth certificate, MQTT over TLS 1.3 with their operational certificate. What each
step prints is read back from the platform's state, not assumed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devicetrust.cli import output
from devicetrust.cli.demo_device import DemoDevice
from devicetrust.cli.demo_factory import Unit, enroll, make_units, static_name
from devicetrust.cli.demo_narration import DemoFailed, Narrator, ms, wait_until
from devicetrust.cli.demo_receiver import Delivery, WebhookReceiver
from devicetrust.cli.demo_tpm import UnitTpms
from devicetrust.domain.errors import NotFound
from devicetrust.domain.events import EventType
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.ingest.feedback import FeedbackQueue
from devicetrust.ingest.records import Feedback, FeedbackStatus
from devicetrust.ingest.store import MessageStore
from devicetrust.pki import serial_text
from devicetrust.runtime import Platform

LOGICAL_NAME = "line-03-left-welding-12"
ATTRIBUTES = {"site": "plant-a", "line": "line-03", "role": "welding", "tags": ["left"]}
MESSAGES_PER_UNIT = 5
FEEDBACK = {"command": "slow_down", "note": "weld seam 7 out of tolerance"}


@dataclass
class Scene:
    """What the steps share: the platform, the running server, the units and their devices."""

    platform: Platform
    actor: str
    narrator: Narrator
    api_url: str
    ca_file: Path
    receiver: WebhookReceiver
    tpms: UnitTpms = field(default_factory=UnitTpms)
    units: dict[str, Unit] = field(default_factory=dict)
    devices: dict[str, DemoDevice] = field(default_factory=dict)
    replaced_event_id: str | None = None

    def device(self, unit: Unit) -> DemoDevice:
        made = DemoDevice(
            unit, api_url=self.api_url, ca_file=self.ca_file, clock=self.platform.clock
        )
        self.devices[unit.letter] = made
        return made

    def close(self) -> None:
        for device in self.devices.values():
            device.close()
        for unit in self.units.values():
            unit.close()
        self.tpms.close()


def factory(scene: Scene) -> None:
    """Step 1: two robot arms get physical identities, keys and birth certificates."""
    scene.narrator.step(
        1,
        "Factory: two robot arms are made",
        "each gets a physical identity (a UUIDv4 from the OS CSPRNG, immutable), a P-256 birth "
        "key created inside its own keystore, and a birth certificate from the manufacturing CA",
    )
    made = make_units(scene.platform, ["A", "B"], actor=scene.actor, tpms=scene.tpms)
    scene.units.update({unit.letter: unit for unit in made})
    output.table(
        "Units made",
        ["unit", "physical id", "birth certificate", "birth key (SPKI SHA-256)"],
        [
            (
                u.letter,
                u.physical_id,
                short_serial(u.birth.serial),
                u.birth.spki_sha256[:16] + "...",
            )
            for u in made
        ],
    )
    sealed = (
        "its store key sealed by the unit's own TPM 2.0 (swtpm)"
        if all(u.tpm for u in made)
        else "its store key from a device secret held in memory for this run (no swtpm)"
    )
    scene.narrator.said(
        f"keystores: {scene.platform.settings.data_dir / 'devices'}/<physical id>/keystore.json "
        f"(AES-256-GCM, {sealed}); only public keys and certificates left them"
    )


def unit_a_on_the_line(scene: Scene) -> None:
    """Step 2: A is enrolled, provisions over HTTPS, connects with mTLS, reports, gets feedback."""
    platform, unit = scene.platform, scene.units["A"]
    holder = _holder(platform)
    scene.narrator.step(
        2,
        f"Line: unit A becomes {LOGICAL_NAME}",
        "the operator enrolls A by its birth key; A proves it holds that key over HTTPS, gets "
        "the logical identity and an operational certificate, connects over MQTT (TLS 1.3, "
        "mutual TLS), sends diagnostics and telemetry and receives feedback",
    )
    _ensure_logical(platform, scene.actor)
    enrollment = enroll(
        platform, unit, static_name(LOGICAL_NAME), actor=scene.actor, replaces=LOGICAL_NAME
    )
    scene.narrator.said(
        f"enrollment {enrollment.enrollment_id}: x509, static name {LOGICAL_NAME}"
        + (f" (taking it over from {holder}, left by an earlier run)" if holder else "")
    )
    scene.narrator.said(
        "policy: hardware_key_required relaxed for this enrollment for 1 day, audited "
        "(the TLS key is in the file keystore); `devicetrust posture` lists it"
    )
    device = scene.device(unit)
    started = time.monotonic()
    provisioned = device.provision()
    took = time.monotonic() - started
    platform.identity.set_state(
        unit.physical_id, DeviceState.ACTIVE, actor=scene.actor, reason="in service"
    )
    device.connect()
    _report(device, MESSAGES_PER_UNIT)
    queue = FeedbackQueue(platform.db, platform.clock)
    sent = queue.send(LOGICAL_NAME, FEEDBACK, actor=scene.actor, ttl=timedelta(minutes=10))
    got = device.wait_feedback()
    reaction = device.arm.react(got)
    if reaction.acknowledgement is not None:  # the arm obeys and says so, as diagnostics
        device.publish("diagnostics", reaction.acknowledgement)
    delivered = wait_until(
        "the feedback's delivery record",
        lambda: _delivered(queue, sent.feedback_id),
    )
    output.fields(
        f"unit A is {provisioned.logical_name}",
        [
            ("physical id", unit.physical_id),
            ("provisioned in", f"{ms(took)} (challenge + register over {scene.api_url})"),
            ("operational cert", f"serial {short_serial(provisioned.serial)}, "
             f"until {output.when(provisioned.not_after)}"),
            ("MQTT", f"{provisioned.mqtt_host}:{provisioned.mqtt_port}, mTLS, TLS 1.3"),
            ("sent", f"{MESSAGES_PER_UNIT} diagnostics + {MESSAGES_PER_UNIT} telemetry, "
             "each acknowledged after its commit"),
            ("feedback", f"{sent.feedback_id}: A received {json.dumps(got)}; "
             f"acknowledged -> {delivered.status.value}"),
            ("reaction", f"A slowed down to speed {device.arm.speed} and reported it"
             if reaction.command else "A ignored it"),
        ],
        style="green",
    )


def replacement(scene: Scene) -> None:
    """Step 3: A fails; the operator lets B take over; A is cut off, B provisions and reports."""
    platform = scene.platform
    unit_a, unit_b = scene.units["A"], scene.units["B"]
    device_a = scene.devices["A"]
    scene.narrator.step(
        3,
        "Unit A malfunctions and is replaced by unit B",
        f"the operator pre-authorises B to take over {LOGICAL_NAME}; when B provisions, one "
        "transaction ends A's binding, binds B and decommissions A; the CA revokes A's "
        "certificate and the gateway drops A's live connection",
    )
    device_a.publish("diagnostics", {"parts_per_hour": 0, "fault": "servo overcurrent, joint 4"})
    enrollment = enroll(
        platform, unit_b, static_name(LOGICAL_NAME), actor=scene.actor, replaces=LOGICAL_NAME
    )
    scene.narrator.said(f"enrollment {enrollment.enrollment_id}: B replaces {LOGICAL_NAME}")
    device_b = scene.device(unit_b)
    device_a.watch_closed()
    provisioned = device_b.provision()
    closed = device_a.wait_closed()
    replaced_at = platform.identity.history_of_logical(LOGICAL_NAME)[-1].started_at
    cert_a = device_a.certificate_serial
    revoked = wait_until(
        "the revocation of A's certificate",
        lambda: platform.pki.get_certificate(cert_a).revoked_at,
    )
    reason = platform.pki.get_certificate(cert_a).revocation_reason
    platform.identity.set_state(
        unit_b.physical_id, DeviceState.ACTIVE, actor=scene.actor, reason="in service"
    )
    device_b.connect()
    _report(device_b, MESSAGES_PER_UNIT)
    refused = device_a.refused_reconnect()
    a_now = platform.identity.get_physical(unit_a.physical_id)
    output.fields(
        f"{LOGICAL_NAME}: unit A -> unit B",
        [
            ("unit A", f"{unit_a.physical_id}: {a_now.state.value}"),
            ("A's certificate", f"serial {short_serial(cert_a)} revoked "
             f"({reason.value if reason else '?'}) at {output.when(revoked)}"),
            ("A's connection", f"closed by the gateway "
             f"{ms((closed.at - replaced_at).total_seconds())} after the replacement committed"),
            ("A reconnecting", f"at once, on its own: refused, CONNACK 0x{refused:02X}"),
            ("unit B", f"{unit_b.physical_id}: {provisioned.logical_name}, certificate "
             f"serial {short_serial(provisioned.serial)}"),
            ("B sent", f"{MESSAGES_PER_UNIT} diagnostics + {MESSAGES_PER_UNIT} telemetry"),
        ],
        style="green",
    )


def history(scene: Scene) -> Delivery:
    """Step 4: one diagnostics history across A and B, telemetry per unit, the webhook."""
    platform = scene.platform
    unit_a, unit_b = scene.units["A"], scene.units["B"]
    store = MessageStore(platform.db, platform.clock)
    scene.narrator.step(
        4,
        "What the platform kept",
        f"diagnostics belong to {LOGICAL_NAME}: one history across A and B; telemetry belongs "
        "to each unit; other systems were told of the replacement by a signed webhook",
    )
    bindings = platform.identity.history_of_logical(LOGICAL_NAME)
    diagnostics = store.diagnostics_of(LOGICAL_NAME, limit=1000)
    sent = Counter(message.physical_id for message in diagnostics)
    letter = {unit_a.physical_id: "A", unit_b.physical_id: "B"}
    output.table(
        f"Units that were {LOGICAL_NAME}, and the diagnostics each sent (times UTC)",
        ["unit", "physical id", "from", "to", "diagnostics"],
        [
            (
                letter.get(b.physical_id, "earlier"),
                b.physical_id,
                _time(b.started_at),
                _time(b.ended_at) if b.ended_at else "now",
                sent[b.physical_id],
            )
            for b in bindings
        ],
    )
    telemetry = {
        u.letter: store.telemetry_of(u.physical_id, limit=1000) for u in (unit_a, unit_b)
    }
    for which, messages in telemetry.items():
        owner = scene.units[which].physical_id
        if {m.physical_id for m in messages} != {owner}:
            raise DemoFailed(f"unit {which}'s telemetry is mixed with another unit's")
    scene.narrator.said(
        f"telemetry: unit A has {len(telemetry['A'])} messages, unit B "
        f"{len(telemetry['B'])}, each only its own"
    )
    delivery = wait_until(
        "the webhook delivery of device.replaced",
        lambda: _replaced_for(scene.receiver, unit_b.physical_id),
    )
    document = delivery.document()
    data = document.get("data") if isinstance(document.get("data"), dict) else {}
    verdict = "VALID" if delivery.signature_valid else f"INVALID ({delivery.verdict})"
    output.fields(
        "Webhook delivery, as the receiving system recorded it",
        [
            ("event", f"{document.get('type')} {document.get('id')}"),
            ("subject", document.get("subject")),
            ("old unit", (data or {}).get("old_physical_id")),
            ("new unit", (data or {}).get("new_physical_id")),
            ("DeviceTrust-Signature", verdict),
        ],
        style="green" if delivery.signature_valid else "red",
    )
    if not delivery.signature_valid:
        raise DemoFailed("the webhook delivery's signature did not verify")
    return delivery


def _report(device: DemoDevice, count: int) -> None:
    for _ in range(count):
        device.publish("diagnostics", device.arm.diagnostics())
        device.publish("telemetry", device.arm.telemetry())


def _ensure_logical(platform: Platform, actor: str) -> None:
    try:
        platform.identity.get_logical(LOGICAL_NAME)
    except NotFound:
        platform.identity.create_logical(LOGICAL_NAME, ATTRIBUTES, actor=actor)


def _holder(platform: Platform) -> str | None:
    try:
        return platform.identity.get_logical(LOGICAL_NAME).physical_id
    except NotFound:
        return None


def _delivered(queue: FeedbackQueue, feedback_id: str) -> Feedback | None:
    found = queue.get(feedback_id)
    return found if found.status is FeedbackStatus.DELIVERED else None


def _replaced_for(receiver: WebhookReceiver, new_physical_id: str) -> Delivery | None:
    for delivery in receiver.deliveries():
        document = delivery.document()
        data = document.get("data")
        if (
            document.get("type") == EventType.DEVICE_REPLACED
            and isinstance(data, dict)
            and data.get("new_physical_id") == new_physical_id
        ):
            return delivery
    return None


def _time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def short_serial(serial: int) -> str:
    text = serial_text(serial)
    return f"{text[:12]}...{text[-4:]}"
