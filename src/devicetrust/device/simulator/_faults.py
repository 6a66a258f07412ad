"""The faults a fleet can inject, and what each must lead to (checked and counted):

- `disconnect`: a device loses its connection for a moment (its client stops; it keeps
  publishing into its offline buffer) -> it reconnects, and nothing it published is lost;
- `clock-skew`: a device's clock is 15 minutes behind when it provisions -> its token is
  refused as expired; once its clock is right again it provisions;
- `bad-cert`: an impostor presents a self-signed ("foreign") certificate for a real unit's
  physical id and key -> the gateway refuses it, the real unit stays connected.
"""

from __future__ import annotations

import enum
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from devicetrust.device.client import DeviceState
from devicetrust.device.keystore import DeviceKey

CLOCK_SKEW = timedelta(minutes=-15)


class Fault(enum.Enum):
    DISCONNECT = "disconnect"
    CLOCK_SKEW = "clock-skew"
    BAD_CERT = "bad-cert"


def parse_faults(text: str) -> frozenset[Fault]:
    """`disconnect,clock-skew,bad-cert` (any subset, or empty) -> the faults; unknown names
    are refused with the list of known ones."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    known = {fault.value: fault for fault in Fault}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown fault {unknown[0]!r} (known: {', '.join(known)})")
    return frozenset(known[name] for name in names)


class SkewedClock:
    """A device clock off by `offset` from the system's."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def write_impostor_state(state: DeviceState, key: DeviceKey, folder: Path) -> DeviceState:
    """The state of an impostor of `state`'s unit: same physical id, gateway and topics, but
    a self-signed certificate for `key` (no platform CA signed it), written to `folder`."""
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, state.physical_id)])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
        .sign(key.signer(), hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    impostor = state.renewed(key.label, pem)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(folder / "device.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(impostor.to_json(), out)
    return impostor
