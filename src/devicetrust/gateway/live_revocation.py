"""Live revocation for the embedded gateway: a connected device whose standing changed is
disconnected at once, and its reconnection is refused by device authentication.

    live = LiveDevices()                                   # the gateway's hooks
    watch = RevocationWatch(db, live, kick=running.kick, forget=device_auth.clear_caches)
    watch.run_once()                                       # every ~0.25 s, on a thread

`LiveDevices` records who is connected with which credential (hooks run on the gateway's
loop; the record is guarded by a lock so the watch can read it from its own thread). It
also passes `connected` and `feedback_acked` on to optional listeners (the feedback
delivery), which must not block either: they hand the work to a thread.
`run_once` re-reads, for the connected units only, what decides whether they may stay:

    the unit's lifecycle state      suspended, quarantined, decommissioned (a replaced unit
                                    is one of the last two): out
    the session's certificate       revoked or on hold (mTLS, and JWTs named by x5t#S256)
    the session's token key         the HMAC key version revoked
    the session's JWT key           the registered public key revoked

and kicks those sessions (DISCONNECT 0x87 Not authorized), after dropping deviceauth's
caches so a reconnection is judged on fresh state. Reading the current state, not events,
makes it idempotent and independent of event ordering; its cost grows with the number of
connected devices (indexed lookups in chunks of 500).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select, tuple_

from devicetrust.deviceauth import AuthenticatedDevice, AuthMethod
from devicetrust.deviceauth.rules import ADMITTED_STATES
from devicetrust.domain.ids import PhysicalId
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.pki.serials import serial_key
from devicetrust.store.database import Database
from devicetrust.store.models import IssuedCertificateRow, PhysicalIdentityRow
from devicetrust.store.models_device_auth import DevicePublicKeyRow, DeviceTokenKeyRow

from .codec import ReasonCode

CHUNK = 500


def _ignore(*_args: object) -> None:
    return None


class LiveDevices:
    """`GatewayHooks` that remember each connected device's proven credential."""

    def __init__(
        self,
        *,
        on_connected: Callable[[PhysicalId], None] = _ignore,
        on_feedback_acked: Callable[[PhysicalId, str], None] = _ignore,
        on_refused: Callable[[PhysicalId, ReasonCode, str], None] = _ignore,
    ) -> None:
        self._devices: dict[PhysicalId, AuthenticatedDevice] = {}
        self._lock = threading.Lock()
        self._on_connected = on_connected
        self._on_feedback_acked = on_feedback_acked
        self._on_refused = on_refused

    def connected(self, device: AuthenticatedDevice) -> None:
        with self._lock:
            self._devices[device.physical_id] = device
        self._on_connected(device.physical_id)

    def disconnected(self, physical_id: PhysicalId) -> None:
        with self._lock:
            self._devices.pop(physical_id, None)

    def feedback_acked(self, physical_id: PhysicalId, feedback_id: str) -> None:
        self._on_feedback_acked(physical_id, feedback_id)

    def refused(self, physical_id: PhysicalId, reason: ReasonCode, what: str) -> None:
        self._on_refused(physical_id, reason, what)

    def snapshot(self) -> list[AuthenticatedDevice]:
        with self._lock:
            return list(self._devices.values())


@dataclass(frozen=True, slots=True)
class Verdict:
    physical_id: PhysicalId
    why: str  # "state:<state>", "certificate", "token-key", "public-key"


class RevocationWatch:
    def __init__(
        self,
        db: Database,
        live: LiveDevices,
        *,
        kick: Callable[[PhysicalId, ReasonCode], object],
        forget: Callable[[], object] = lambda: None,
    ) -> None:
        self._db = db
        self._live = live
        self._kick = kick
        self._forget = forget

    def run_once(self) -> list[Verdict]:
        """Kick every connected device that may no longer be connected; returns why."""
        devices = self._live.snapshot()
        verdicts: list[Verdict] = []
        for start in range(0, len(devices), CHUNK):
            verdicts.extend(self._judge(devices[start : start + CHUNK]))
        if verdicts:
            self._forget()
            for verdict in verdicts:
                self._kick(verdict.physical_id, ReasonCode.NOT_AUTHORIZED)
        return verdicts

    def _judge(self, devices: Sequence[AuthenticatedDevice]) -> Iterable[Verdict]:
        by_id = {d.physical_id: d for d in devices}
        serials = {_stored_serial(d.credential_id): d for d in devices if _names_certificate(d)}
        versions = [
            (d.physical_id, int(d.credential_id))
            for d in devices
            if d.method is AuthMethod.HMAC_TOKEN and d.credential_id.isdigit()
        ]
        key_ids = [d.credential_id for d in devices if d.method is AuthMethod.JWT]
        out: dict[PhysicalId, str] = {}
        with self._db.read() as session:
            states = session.execute(
                select(PhysicalIdentityRow.id, PhysicalIdentityRow.state).where(
                    PhysicalIdentityRow.id.in_(list(by_id))
                )
            ).all()
            for pid, state in states:
                if DeviceState(state) not in ADMITTED_STATES:
                    out[PhysicalId(pid)] = f"state:{state}"
            if serials:
                revoked = session.execute(
                    select(IssuedCertificateRow.serial).where(
                        IssuedCertificateRow.serial.in_(list(serials)),
                        IssuedCertificateRow.revoked_at.is_not(None),
                    )
                ).scalars()
                for serial in revoked:
                    out.setdefault(serials[serial].physical_id, "certificate")
            if versions:
                retired = session.execute(
                    select(DeviceTokenKeyRow.physical_id).where(
                        tuple_(DeviceTokenKeyRow.physical_id, DeviceTokenKeyRow.version).in_(
                            versions
                        ),
                        DeviceTokenKeyRow.revoked_at.is_not(None),
                    )
                ).scalars()
                for pid in retired:
                    out.setdefault(PhysicalId(pid), "token-key")
            if key_ids:
                gone = session.execute(
                    select(DevicePublicKeyRow.physical_id).where(
                        DevicePublicKeyRow.key_id.in_(key_ids),
                        DevicePublicKeyRow.revoked_at.is_not(None),
                    )
                ).scalars()
                for pid in gone:
                    out.setdefault(PhysicalId(pid), "public-key")
        return [Verdict(pid, why) for pid, why in out.items()]


def _names_certificate(device: AuthenticatedDevice) -> bool:
    """mTLS sessions, and JWTs named by their certificate (`x5t#S256`): the credential id
    is then the certificate serial in openssl's form (upper-case hex); a registered JWT key
    is named by its 64-hex SHA-256 instead."""
    ident = device.credential_id
    if device.method is AuthMethod.MTLS:
        return True
    return device.method is AuthMethod.JWT and len(ident) < 64 and _is_hex(ident)


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def _stored_serial(credential_id: str) -> str:
    return serial_key(int(credential_id, 16)) if _is_hex(credential_id) else credential_id
