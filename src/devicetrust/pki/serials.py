"""Certificate serial numbers: how they are drawn, stored and read back.

A serial is 159 bits from the OS CSPRNG (`secrets`), never a counter or a clock: RFC 5280
§4.1.2.2 wants a positive integer of at most 20 octets, and 159 bits always encode in 20 DER
octets without a sign byte; the CA/Browser Forum Baseline Requirements §7.1 ask for at least
64 unpredictable bits so that a chosen-prefix collision cannot be steered into a serial.
Uniqueness is the database's job (`pki_certificates.serial` is unique), not luck's.

Never returns zero or a negative serial, and never accepts one.
"""

from __future__ import annotations

import re
import secrets
from typing import NewType

from devicetrust.pki.errors import InvalidSerial

Serial = NewType("Serial", int)

SERIAL_BITS = 159
_MAX = 1 << 160  # anything that fits 20 octets may be a serial someone else's CA wrote
_HEX_RE = re.compile(r"[0-9a-f]{1,40}")
_SEPARATORS = re.compile(r"[\s:]")


def new_serial() -> Serial:
    """A fresh positive serial of at most 159 bits."""
    while True:
        value = secrets.randbits(SERIAL_BITS)
        if value:  # zero is not a positive integer (a 2**-159 event, but say it)
            return Serial(value)


def serial_key(serial: int) -> str:
    """The stored form: 40 lowercase hex digits, zero-padded (sorts and compares exactly)."""
    return f"{serial:040x}"


def serial_text(serial: int) -> str:
    """The form `openssl x509 -serial` prints: upper-case hex, an even number of digits."""
    digits = f"{serial:X}"
    return digits if len(digits) % 2 == 0 else "0" + digits


def parse_serial(value: int | str) -> Serial:
    """An int, or hex as openssl and others print it (`0A:1B...`, `0x0a1b`, any case)."""
    if isinstance(value, bool):
        raise InvalidSerial("a serial is an integer or a hex string")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = _SEPARATORS.sub("", value).lower().removeprefix("0x").lstrip("0") or "0"
        if not _HEX_RE.fullmatch(text):
            raise InvalidSerial(
                "a serial is hex digits (colons allowed), at most 20 octets", value=value[:64]
            )
        number = int(text, 16)
    else:
        raise InvalidSerial("a serial is an integer or a hex string")
    if not 0 < number < _MAX:
        raise InvalidSerial("a serial is a positive integer of at most 20 octets")
    return Serial(number)
