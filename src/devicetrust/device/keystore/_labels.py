"""What a key or secret label may be, and how large a sealed secret may be: the same rules
for every backend, because a label becomes a file name (`tpm2:`), a JSON key (`file:`) and a
CKA_LABEL (`pkcs11:`).
"""

from __future__ import annotations

import re

from devicetrust.device.keystore._base import InvalidKeystoreUri, KeystoreError

# A TPM2B_SENSITIVE_DATA holds at most MAX_SYM_DATA = 128 bytes (TPM 2.0 Part 2 §10.4.3).
MAX_SECRET_SIZE = 128

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_label(label: str) -> str:
    """`label` if it is 1-64 characters of letters, digits, `.`, `_`, `-` (not first)."""
    if not isinstance(label, str) or _LABEL.fullmatch(label) is None:
        raise InvalidKeystoreUri(
            "a label is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return label


def check_secret(secret: bytes | bytearray) -> None:
    if not isinstance(secret, bytes | bytearray):
        raise KeystoreError("a sealed secret is bytes or a bytearray", code="keystore.bad_secret")
    if not 0 < len(secret) <= MAX_SECRET_SIZE:
        raise KeystoreError(
            f"a sealed secret is 1 to {MAX_SECRET_SIZE} bytes", code="keystore.bad_secret"
        )


def wipe(buffer: bytearray) -> None:
    """Overwrite `buffer` with zeros in place (the best Python can do: immutable copies made
    by libraries are out of reach, so code keeps secrets in bytearrays as long as it can)."""
    buffer[:] = bytes(len(buffer))
