"""How the measures map to ETSI EN 303 645 (V2.1.1) provisions 5.1-5.13 and to the six
device cybersecurity capabilities of NISTIR 8259A, and the roll-up of results onto them.

A provision or capability takes the worst status of the measures mapped to it; one no
measure covers is `unknown` ("not assessed from platform state"), never passing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from devicetrust.policy.posture.measures import Measure, Result, Status, worst

ETSI_PROVISIONS: Mapping[str, str] = {
    "5.1": "No universal default passwords",
    "5.2": "Implement a means to manage reports of vulnerabilities",
    "5.3": "Keep software updated",
    "5.4": "Securely store sensitive security parameters",
    "5.5": "Communicate securely",
    "5.6": "Minimize exposed attack surfaces",
    "5.7": "Ensure software integrity",
    "5.8": "Ensure that personal data is secure",
    "5.9": "Make systems resilient to outages",
    "5.10": "Examine system telemetry data",
    "5.11": "Make it easy for users to delete user data",
    "5.12": "Make installation and maintenance of devices easy",
    "5.13": "Validate input data",
}

NIST_CAPABILITIES: Mapping[str, str] = {
    "device_identification": "Device identification",
    "device_configuration": "Device configuration",
    "data_protection": "Data protection",
    "logical_access_to_interfaces": "Logical access to interfaces",
    "software_update": "Software update",
    "cybersecurity_state_awareness": "Cybersecurity state awareness",
}

# measure -> (ETSI provisions, NISTIR 8259A capabilities)
MAPPING: Mapping[Measure, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # 5.1-1: credentials unique per device; 5.4-3: no hard-coded, shared security parameters
    Measure.UNIQUE_IDENTITY: (("5.1", "5.4"), ("device_identification",)),
    # 5.4-1/5.4-2: parameters stored securely, hardware-backed where possible
    Measure.KEY_IN_HARDWARE: (("5.4",), ("device_identification", "data_protection")),
    # 5.5-8: security parameters managed over their life (short validity limits exposure)
    Measure.SHORT_LIVED_CREDENTIALS: (
        ("5.4", "5.5"),
        ("data_protection", "logical_access_to_interfaces"),
    ),
    Measure.ENCRYPTED_STORAGE: (("5.4", "5.8"), ("data_protection",)),
    Measure.SIGNED_FIRMWARE: (("5.3", "5.7"), ("software_update",)),
    # the unit proved at provisioning who it is with factory-rooted evidence
    Measure.ATTESTATION: (
        ("5.1", "5.12"),
        ("device_identification", "device_configuration"),
    ),
    Measure.MEASURED_BOOT: (("5.7",), ("cybersecurity_state_awareness",)),
    # TLS 1.3, asymmetric credentials, source networks and rate limits
    Measure.SECURE_COMMUNICATION: (
        ("5.5", "5.6"),
        ("logical_access_to_interfaces", "device_configuration"),
    ),
}

NOT_ASSESSED = "not assessed from platform state"


@dataclass(frozen=True, slots=True)
class Rollup:
    ref: str  # "5.4" or "data_protection"
    title: str
    status: Status
    measures: tuple[str, ...]
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "title": self.title,
            "status": self.status.value,
            "measures": list(self.measures),
            "reason": self.reason,
        }


def _roll(
    titles: Mapping[str, str], position: int, results: Iterable[Result]
) -> tuple[Rollup, ...]:
    found = list(results)
    out: list[Rollup] = []
    for ref, title in titles.items():
        covering = [m for m, refs in MAPPING.items() if ref in refs[position]]
        mine = [r for r in found if r.measure in covering]
        if not covering or not mine:
            out.append(Rollup(ref, title, Status.UNKNOWN, (), NOT_ASSESSED))
            continue
        status = worst(r.status for r in mine)
        names = tuple(dict.fromkeys(m.value for m in covering))
        drivers = sorted({r.check or r.measure.value for r in mine if r.status is status})
        out.append(Rollup(ref, title, status, names, f"{status.value}: {', '.join(drivers)}"))
    return tuple(out)


def etsi(results: Iterable[Result]) -> tuple[Rollup, ...]:
    return _roll(ETSI_PROVISIONS, 0, results)


def nist(results: Iterable[Result]) -> tuple[Rollup, ...]:
    return _roll(NIST_CAPABILITIES, 1, results)
