"""Errors of the security policy, each with a stable `policy.*` code.

InvalidPolicy          400  unknown field, malformed or out-of-range value, bad scope,
                            missing reason or expiry, expiry too far
WeakeningRefused       409  a plain `set` that would weaken the secure baseline
RelaxationExists       409  an active relaxation of that rule at that scope exists
RelaxationInactive     409  revoking a relaxation that has lapsed or was revoked
ScopeTargetNotFound    404  the enrollment or device a scope names does not exist
RelaxationNotFound     404  no relaxation with that id
PolicyRefusal          403  an evaluation helper's refusal, raised by `Verdict.require`
"""

from __future__ import annotations

from typing import Any

from devicetrust.domain.errors import Conflict, Forbidden, InvalidInput, NotFound


class InvalidPolicy(InvalidInput):
    pass


class WeakeningRefused(Conflict):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("policy.weakens", message, **details)


class RelaxationExists(Conflict):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("policy.relaxation_exists", message, **details)


class RelaxationInactive(Conflict):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("policy.relaxation_inactive", message, **details)


class ScopeTargetNotFound(NotFound):
    pass


class RelaxationNotFound(NotFound):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("policy.relaxation_not_found", message, **details)


class PolicyRefusal(Forbidden):
    pass
