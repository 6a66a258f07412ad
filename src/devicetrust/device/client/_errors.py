"""The device client's errors: one base, a stable machine-readable `code` on each.

A refusal by the server keeps the problem+json `code` it sent (e.g.
`provisioning.token_replayed`); a CONNACK refusal keeps its MQTT reason code. Never carries
a key, a token, a MAC or a payload.
"""

from __future__ import annotations

__all__ = [
    "BufferFull",
    "ConnectRefused",
    "DeviceClientError",
    "NotProvisioned",
    "ProvisioningPending",
    "ProvisioningRefused",
    "RenewalFailed",
    "ServerUnreachable",
    "StateFileInvalid",
]


class DeviceClientError(Exception):
    """Base of every error the device client raises; `code` is stable."""

    code = "device.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.args[0]} [{self.code}]"


class ServerUnreachable(DeviceClientError):
    """The server could not be reached (network, TLS, timeout) or answered nonsense."""

    code = "device.server_unreachable"


class ProvisioningRefused(DeviceClientError):
    """The server refused a provisioning or renewal request (problem+json). `code` is the
    server's problem code, `status` its HTTP status."""

    code = "provisioning.refused"

    def __init__(self, message: str, *, code: str | None = None, status: int = 0) -> None:
        super().__init__(message, code=code)
        self.status = status


class ProvisioningPending(DeviceClientError):
    """Still waiting (operator approval or rate limit) when the caller's patience ran out;
    `retry_after` is the server's last advice, in seconds."""

    code = "provisioning.pending"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotProvisioned(DeviceClientError):
    """No device state in the data directory: provision first."""

    code = "device.not_provisioned"


class StateFileInvalid(DeviceClientError):
    """The device state file is unreadable, of an unknown version or inconsistent."""

    code = "device.state_invalid"


class ConnectRefused(DeviceClientError):
    """The gateway refused the CONNECT; `reason` is the MQTT 5 reason code."""

    code = "device.connect_refused"

    def __init__(self, message: str, *, reason: int) -> None:
        super().__init__(message)
        self.reason = reason


class RenewalFailed(DeviceClientError):
    """The operational certificate could not be renewed; the current one stays in use."""

    code = "device.renewal_failed"


class BufferFull(DeviceClientError):
    """The offline buffer is at its bound and its policy is `Overflow.REFUSE`."""

    code = "device.buffer_full"
