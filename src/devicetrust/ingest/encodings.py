"""Device payload encodings: JSON, CBOR (RFC 8949) and MessagePack, decoded to plain JSON
values. Pure: bytes in, a `dict` out or a refusal; no I/O.

The encoding is the MQTT 5 Content Type of the PUBLISH (`application/json`,
`application/cbor`, `application/msgpack` or `application/x-msgpack`, parameters such as
`; charset=utf-8` ignored); a message without one (every MQTT 3.1.1 message) is JSON. Any
other content type is refused (`ingest.unsupported_content_type`): guessing the encoding
from the bytes would let one payload mean two things.

Whatever the encoding, the result is a document JSON could have carried, so the store keeps
and queries every message alike: an object (map with string keys) of lists, strings,
integers (-2**64 .. 2**64-1, CBOR's range), finite floats, booleans and null. Never builds
anything else: CBOR tags (dates, bignums, shared references, ...) and MessagePack extension
types (timestamps, ...) are refused before a decoder turns them into objects, as are byte
strings, CBOR simple values and `undefined`. The size cap is checked before decoding, and
the nesting depth and the number of values are bounded (a 64 KiB "bomb" of nested arrays or
a header declaring 2**64 items is refused at once, never allocated).
"""

from __future__ import annotations

import enum
import io
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import cbor2
import msgpack  # type: ignore[import-untyped]  # ships no type information

from devicetrust.domain.errors import InvalidInput, PayloadTooLarge

DEFAULT_MAX_PAYLOAD = 64 * 1024
DEFAULT_MAX_DEPTH = 16  # nested maps and lists (the outer object is depth 1)
DEFAULT_MAX_VALUES = 8192  # every value in the document, keys included
_MIN_INT, _MAX_INT = -(2**64), 2**64 - 1


class Encoding(enum.StrEnum):
    JSON = "application/json"
    CBOR = "application/cbor"
    MSGPACK = "application/msgpack"


CONTENT_TYPES: dict[str, Encoding] = {
    "application/json": Encoding.JSON,
    "application/cbor": Encoding.CBOR,
    "application/msgpack": Encoding.MSGPACK,
    "application/x-msgpack": Encoding.MSGPACK,
}


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_bytes: int = DEFAULT_MAX_PAYLOAD
    max_depth: int = DEFAULT_MAX_DEPTH
    max_values: int = DEFAULT_MAX_VALUES


def encoding_of(content_type: str | None) -> Encoding:
    """The encoding a content type declares (None: JSON), or `ingest.unsupported_content_type`."""
    if content_type is None:
        return Encoding.JSON
    media = content_type.split(";", 1)[0].strip().lower()
    found = CONTENT_TYPES.get(media)
    if found is None:
        raise InvalidInput(
            "ingest.unsupported_content_type",
            f"content type {content_type[:64]!r} is not one of {', '.join(CONTENT_TYPES)}",
        )
    return found


def decode_payload(
    payload: bytes, content_type: str | None = None, limits: DecodeLimits = DecodeLimits()
) -> dict[str, Any]:
    """The object in `payload`, decoded by its content type, or a refusal (see `REASONS`)."""
    encoding = encoding_of(content_type)
    if len(payload) > limits.max_bytes:
        raise PayloadTooLarge(
            "ingest.payload_too_large",
            f"payload of {len(payload)} bytes exceeds {limits.max_bytes}",
            size=len(payload),
        )
    if encoding is Encoding.JSON:
        value = _json(payload, limits)
    elif encoding is Encoding.CBOR:
        value = _cbor(payload, limits)
    else:
        value = _msgpack(payload, limits)
    if not isinstance(value, dict):
        raise InvalidInput("ingest.payload_not_object", "payload must be an object (a map)")
    check_json_compatible(value, limits)
    return value


REASONS = (
    "ingest.unsupported_content_type",  # not JSON, CBOR or MessagePack
    "ingest.payload_too_large",  # over max_bytes, checked before decoding
    "ingest.payload_not_json",  # JSON: not UTF-8 JSON (NaN/Infinity included)
    "ingest.payload_malformed",  # CBOR / MessagePack: not well formed, or trailing bytes
    "ingest.payload_not_object",  # the top value is not an object
    "ingest.payload_too_deep",  # nested deeper than max_depth
    "ingest.payload_too_many_values",  # more than max_values values
    "ingest.payload_unsupported_value",  # a tag, extension, byte string, non-string key, ...
)


# ---- JSON -----------------------------------------------------------------------------------

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def _json(payload: bytes, limits: DecodeLimits) -> Any:
    # The C scanner recurses once per level: a 64 KiB bomb of `[` would raise RecursionError
    # deep inside it. Count the depth first, strings removed -- unless the payload holds no
    # more opening brackets in all than the depth allowed (the usual report), which bounds
    # its depth already.
    if payload.count(b"[") + payload.count(b"{") > limits.max_depth:
        depth = 0
        for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub(b"", payload)):
            depth += 1 if bracket in (b"[", b"{") else -1
            if depth > limits.max_depth:
                _too_deep(limits)
    try:
        return _JSON_DECODER.decode(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("ingest.payload_not_json", "payload is not UTF-8 JSON") from exc


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259 §6) and PostgreSQL's JSON refuses them.
    raise ValueError(f"{name} is not JSON")


_JSON_DECODER = json.JSONDecoder(parse_constant=_no_constant)  # what json.loads would build


# ---- CBOR -----------------------------------------------------------------------------------


class _RefuseEveryTag(Mapping[int, Any]):
    """cbor2's `semantic_decoders` for every tag number: its built-in decoders (datetime,
    bignum, decimal, regex, shared references, sets, ...) never run."""

    def __getitem__(self, tag: int) -> Any:
        return _refuse_tag

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _refuse_tag(*_: object) -> NoReturn:
    raise _Unsupported("a CBOR tag")


def _refuse_unknown_tag(_decoder: object, _tag: object) -> NoReturn:
    raise _Unsupported("a CBOR tag")


class _Unsupported(ValueError):
    pass


def _cbor(payload: bytes, limits: DecodeLimits) -> Any:
    stream = io.BytesIO(payload)
    decoder = cbor2.CBORDecoder(
        stream,
        tag_hook=_refuse_unknown_tag,
        semantic_decoders=_RefuseEveryTag(),
        max_depth=limits.max_depth,
        allow_indefinite=False,  # lengths are declared, so checked against the bytes left
        allow_duplicate_keys=False,
        strict_hashable_types=True,  # map keys are strings (or bytes, refused below)
    )
    try:
        value = decoder.decode()
    except cbor2.CBORDecodeError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, _Unsupported):
            _unsupported("a CBOR tag")
        if "nesting depth" in str(exc):
            _too_deep(limits)
        raise InvalidInput("ingest.payload_malformed", "payload is not well-formed CBOR") from exc
    if stream.tell() != len(payload):
        raise InvalidInput("ingest.payload_malformed", "bytes after the CBOR item")
    return value


# ---- MessagePack ----------------------------------------------------------------------------


def _refuse_ext(code: int, _data: bytes) -> NoReturn:
    raise _Unsupported(f"MessagePack extension type {code}")


def _msgpack(payload: bytes, limits: DecodeLimits) -> Any:
    try:
        return msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            ext_hook=_refuse_ext,
            timestamp=0,  # a timestamp (extension -1) stays a Timestamp: refused below
            # Each item takes a byte at least: a larger declared length cannot be honest
            # (and the walker below counts the values that are there).
            max_array_len=limits.max_bytes,
            max_map_len=limits.max_bytes,
        )
    except _Unsupported:
        _unsupported("a MessagePack extension type")
    except msgpack.StackError:
        _too_deep(limits)
    except (ValueError, TypeError) as exc:
        # ExtraData, FormatError, OutOfData (ValueError), a declared length over the limits
        # (ValueError), invalid UTF-8 (UnicodeDecodeError), a non-string map key
        # (`strict_map_key`: ValueError), an unhashable key (TypeError).
        raise InvalidInput(
            "ingest.payload_malformed", "payload is not well-formed MessagePack"
        ) from exc


# ---- the decoded document ------------------------------------------------------------------


def check_json_compatible(document: dict[str, Any], limits: DecodeLimits) -> None:
    """Refuse anything JSON could not carry, and documents deeper or larger than `limits`.
    Iterative: a decoder's own depth limit is not relied on."""
    if not _plainly_compatible(document, limits):
        _check_json_compatible(document, limits)  # finds the problem and names it


def _plainly_compatible(document: dict[str, Any], limits: DecodeLimits) -> bool:
    """True if `document` has none of the problems `_check_json_compatible` refuses. The
    same rules on exact built-in types, leaves checked in place instead of queued (the
    common case, fast); anything else answers False and the full walk decides."""
    max_depth, max_values = limits.max_depth, limits.max_values
    stack: list[tuple[Any, int]] = [(document, 1)]
    seen = 0
    while stack:
        container, depth = stack.pop()
        seen += 1
        if depth > max_depth:
            return False
        if type(container) is dict:
            items: Any = container.values()
            if not all(type(key) is str for key in container):
                return False
        elif type(container) is list:
            items = container
        else:
            return False
        for value in items:
            kind = type(value)
            if kind is dict or kind is list:
                stack.append((value, depth + 1))
            elif _PLAIN_LEAF.get(kind, _not_plain)(value):
                seen += 1
            else:
                return False
        if seen > max_values:
            return False
    return seen <= max_values


def _not_plain(_value: Any) -> bool:
    return False


# Exact leaf types and whether a value of that type is one JSON carries.
_PLAIN_LEAF: dict[type, Callable[[Any], bool]] = {
    str: lambda _value: True,
    bool: lambda _value: True,
    type(None): lambda _value: True,
    int: lambda value: _MIN_INT <= value <= _MAX_INT,
    float: math.isfinite,
}


def _check_json_compatible(document: dict[str, Any], limits: DecodeLimits) -> None:
    stack: list[tuple[Any, int]] = [(document, 1)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > limits.max_values:
            raise InvalidInput(
                "ingest.payload_too_many_values", f"more than {limits.max_values} values"
            )
        if isinstance(value, dict):
            if depth > limits.max_depth:
                _too_deep(limits)
            for key, item in value.items():
                if not isinstance(key, str):
                    _unsupported(f"a {type(key).__name__} map key")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if depth > limits.max_depth:
                _too_deep(limits)
            stack.extend((item, depth + 1) for item in value)
        else:
            _check_scalar(value)


def _check_scalar(value: Any) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not _MIN_INT <= value <= _MAX_INT:
            _unsupported("an integer beyond 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            _unsupported("a non-finite number")
    else:
        _unsupported(f"a {type(value).__name__} value")


def _too_deep(limits: DecodeLimits) -> NoReturn:
    raise InvalidInput(
        "ingest.payload_too_deep", f"payload nested deeper than {limits.max_depth}"
    )


def _unsupported(what: str) -> NoReturn:
    raise InvalidInput("ingest.payload_unsupported_value", f"payload holds {what}")
