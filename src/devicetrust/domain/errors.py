"""The error tree. Every failure a user can cause is a `DeviceTrustError` with a stable `code`.

    DeviceTrustError            code, http status, message
    +-- InvalidInput            400  malformed name, id, JSON field, bad parameter
    +-- Unauthorized            401  missing or wrong operator credential
    +-- Forbidden               403  credential lacks the scope
    +-- NotFound                404  unknown physical id, logical name, webhook
    +-- Conflict                409  name taken, already bound, concurrent change
    |   +-- InvalidTransition   409  lifecycle transition not allowed from the current state
    +-- PayloadTooLarge         413  request body over the limit
    +-- ConfigurationError      500  server set-up incomplete (e.g. no key-encryption key)

The API maps `status` and `code` to problem+json, the CLI to a message and exit status.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DeviceTrustError(Exception):
    status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


class InvalidInput(DeviceTrustError):
    status = 400
    exit_code = 2


class Unauthorized(DeviceTrustError):
    status = 401
    exit_code = 3


class Forbidden(DeviceTrustError):
    status = 403
    exit_code = 3


class NotFound(DeviceTrustError):
    status = 404
    exit_code = 4


class Conflict(DeviceTrustError):
    status = 409
    exit_code = 5


class InvalidTransition(Conflict):
    pass


class PayloadTooLarge(DeviceTrustError):
    status = 413
    exit_code = 2


class ConfigurationError(DeviceTrustError):
    status = 500
    exit_code = 6
