"""Per-stream schemas: what a diagnostics or telemetry report may hold. Pure, no I/O.

A schema names fields and the kind of value each takes, which of them are required, and
what any other field may be. Kinds:

| kind | values |
|---|---|
| `number` | an integer or a finite float (not a boolean) |
| `integer` | an integer |
| `bool` | true or false |
| `string` | a string of at most `MAX_STRING` characters |
| `timestamp` | an ISO 8601 date-time string, or a number of seconds since the epoch (≥ 0) |
| `number[N]` | a list of at most N numbers |
| `measurement` | a number, bool, string or list of at most `MAX_LIST` numbers |
| `any` | any JSON value (the decoder's limits still hold) |

Built in (`DEFAULT_SCHEMAS`): both streams take an optional `ts` (`timestamp`) and
measurement fields; telemetry's `torque` (a robot arm's joint torques) is `number[32]`.
An operator may replace a stream's schema with `StreamSchema.parse({...})` (the form of a
settings table, see docs/data-plane.md). A report that does not fit is refused with
`ingest.schema_violation`, the field and what was wrong in the detail.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from devicetrust.domain.errors import InvalidInput
from devicetrust.ingest.records import MessageKind

MAX_STRING = 1024
MAX_LIST = 256
SCHEMA_VIOLATION = "ingest.schema_violation"


class FieldKind(enum.StrEnum):
    NUMBER = "number"
    INTEGER = "integer"
    BOOL = "bool"
    STRING = "string"
    TIMESTAMP = "timestamp"
    NUMBER_LIST = "number[]"
    MEASUREMENT = "measurement"
    ANY = "any"


@dataclass(frozen=True, slots=True)
class FieldRule:
    kind: FieldKind
    max_items: int = MAX_LIST  # for NUMBER_LIST

    @classmethod
    def parse(cls, text: str) -> FieldRule:
        """`number`, `number[32]`, `timestamp`, ... (see the module doc)."""
        found = re.fullmatch(r"number\[(\d{1,5})\]", text.strip())
        if found is not None:
            return cls(FieldKind.NUMBER_LIST, max_items=int(found.group(1)))
        try:
            kind = FieldKind(text.strip())
        except ValueError:
            raise InvalidInput(
                "ingest.bad_schema", f"unknown field kind {text[:32]!r}"
            ) from None
        if kind is FieldKind.NUMBER_LIST:
            raise InvalidInput("ingest.bad_schema", "a number list states its size: number[N]")
        return cls(kind)

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` for this rule, or None."""
        return _PROBLEMS[self.kind](self, value)


@dataclass(frozen=True, slots=True)
class StreamSchema:
    fields: Mapping[str, FieldRule] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    other_fields: FieldRule | None = FieldRule(FieldKind.MEASUREMENT)  # None: refused

    @classmethod
    def parse(cls, table: Mapping[str, Any]) -> StreamSchema:
        """From a settings table: `{"fields": {"torque": "number[32]", ...},
        "required": ["ts"], "other_fields": "measurement" | "any" | "refuse"}`."""
        unknown = set(table) - {"fields", "required", "other_fields"}
        if unknown:
            raise InvalidInput("ingest.bad_schema", f"unknown schema keys {sorted(unknown)}")
        raw_fields = table.get("fields", {})
        if not isinstance(raw_fields, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw_fields.items()
        ):
            raise InvalidInput("ingest.bad_schema", "fields maps names to kinds")
        required = table.get("required", [])
        if not isinstance(required, list | tuple) or not all(
            isinstance(r, str) and r in raw_fields for r in required
        ):
            raise InvalidInput("ingest.bad_schema", "required lists names of fields")
        other = table.get("other_fields", "measurement")
        if not isinstance(other, str):
            raise InvalidInput("ingest.bad_schema", "other_fields is a kind or 'refuse'")
        return cls(
            fields={name: FieldRule.parse(kind) for name, kind in raw_fields.items()},
            required=frozenset(required),
            other_fields=None if other == "refuse" else FieldRule.parse(other),
        )

    def check(self, document: Mapping[str, Any]) -> None:
        """Refuse (`ingest.schema_violation`, detail `<field>: <problem>`) a document that
        does not fit; the first problem in field order is reported."""
        if self.required:
            for name in sorted(self.required - document.keys()):
                _violation(name, "missing")
        fields, other = self.fields, self.other_fields
        for name, value in document.items():
            rule = fields.get(name, other)
            if rule is None:
                _violation(name, "not an allowed field")
            problem = _PROBLEMS[rule.kind](rule, value)
            if problem is not None:
                _violation(name, problem)


_COMMON = {"ts": FieldRule(FieldKind.TIMESTAMP)}
DEFAULT_SCHEMAS: Mapping[MessageKind, StreamSchema] = {
    MessageKind.DIAGNOSTICS: StreamSchema(fields=dict(_COMMON)),
    MessageKind.TELEMETRY: StreamSchema(
        fields={**_COMMON, "torque": FieldRule(FieldKind.NUMBER_LIST, max_items=32)}
    ),
}


def check_document(
    kind: MessageKind,
    document: Mapping[str, Any],
    schemas: Mapping[MessageKind, StreamSchema] = DEFAULT_SCHEMAS,
) -> None:
    """Check a decoded report against its stream's schema (a stream with none: no check)."""
    schema = schemas.get(kind)
    if schema is not None:
        schema.check(document)


def _is_number(value: Any) -> bool:
    kind = type(value)  # exact types first: the common case, without isinstance chains
    if kind is int:
        return True
    if kind is float:
        return math.isfinite(value)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _string_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "not a string"
    return None if len(value) <= MAX_STRING else f"longer than {MAX_STRING} characters"


def _list_problem(value: Any, max_items: int) -> str | None:
    if not isinstance(value, list):
        return "not a list of numbers"
    if len(value) > max_items:
        return f"more than {max_items} items"
    for item in value:
        if not _is_number(item):
            return "not a list of numbers"
    return None


def _timestamp_problem(value: Any) -> str | None:
    if _is_number(value):
        return None if value >= 0 else "a negative epoch time"
    if isinstance(value, str) and len(value) <= 64:
        try:
            datetime.fromisoformat(value)  # Python 3.11: the whole of ISO 8601's common forms
        except ValueError:
            return "not an ISO 8601 time"
        return None
    return "not a time (ISO 8601 string or epoch seconds)"


def _number(_rule: FieldRule, value: Any) -> str | None:
    return None if _is_number(value) else "not a number"


def _integer(_rule: FieldRule, value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    return None if ok else "not an integer"


def _bool(_rule: FieldRule, value: Any) -> str | None:
    return None if isinstance(value, bool) else "not a boolean"


def _measurement(_rule: FieldRule, value: Any) -> str | None:
    if _is_number(value) or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return _string_problem(value)
    if isinstance(value, list):
        return _list_problem(value, MAX_LIST)
    return "not a measurement (number, bool, string or list of numbers)"


# One check per field kind (a table, not an if-chain: this runs for every field of every
# report).
_PROBLEMS: dict[FieldKind, Callable[[FieldRule, Any], str | None]] = {
    FieldKind.ANY: lambda _rule, _value: None,
    FieldKind.NUMBER: _number,
    FieldKind.INTEGER: _integer,
    FieldKind.BOOL: _bool,
    FieldKind.STRING: lambda _rule, value: _string_problem(value),
    FieldKind.TIMESTAMP: lambda _rule, value: _timestamp_problem(value),
    FieldKind.NUMBER_LIST: lambda rule, value: _list_problem(value, rule.max_items),
    FieldKind.MEASUREMENT: _measurement,
}


def _violation(name: str, problem: str) -> NoReturn:
    raise InvalidInput(SCHEMA_VIOLATION, f"{name[:64]}: {problem}", field=name[:64])
