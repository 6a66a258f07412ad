"""The posture report: which security measures hold, per device and for the fleet, computed
from live state and mapped to ETSI EN 303 645 and NISTIR 8259A."""

from devicetrust.policy.posture.measures import Measure, Result, Status
from devicetrust.policy.posture.report import (
    DevicePosture,
    FleetPosture,
    MeasureSummary,
    PostureReports,
)
from devicetrust.policy.posture.standards import ETSI_PROVISIONS, MAPPING, NIST_CAPABILITIES, Rollup

__all__ = [
    "ETSI_PROVISIONS",
    "MAPPING",
    "NIST_CAPABILITIES",
    "DevicePosture",
    "FleetPosture",
    "Measure",
    "MeasureSummary",
    "PostureReports",
    "Result",
    "Rollup",
    "Status",
]
