"""The one way an instant enters the API: an RFC 3339 / ISO 8601 string with an offset.

Pydantic's lax mode would also take a number (`0`, `"0.5"`) as Unix seconds, which the
OpenAPI document (`format: date-time`) does not allow and no client means: such input is
refused as a validation error instead of becoming 1970.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator

_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _iso_8601_only(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _NUMBER.fullmatch(value):
        raise ValueError("an instant is an ISO 8601 string with an offset")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_8601_only)]
