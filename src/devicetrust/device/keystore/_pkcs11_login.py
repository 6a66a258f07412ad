"""Opening a logged-in session on the PKCS#11 token a `pkcs11:` URI names, with the PIN from
the caller or from the URI's `pin-source` (an environment variable, or a 0600 file).

Never logs, repr()s or puts a PIN in an error; keeps it in a bytearray wiped after login.
python-pkcs11 takes the PIN as `str`: that one copy cannot be wiped.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from devicetrust.device.keystore._base import KeystoreError, KeystoreUnavailable, UnlockFailed
from devicetrust.device.keystore._labels import wipe
from devicetrust.device.keystore._uri import PinSource, Pkcs11Uri

MAX_PIN_SIZE = 256


def open_session(target: Pkcs11Uri, secret: bytes | bytearray | None) -> Any:
    """A logged-in read/write session on the token (python-pkcs11 `Session`)."""
    try:
        import pkcs11
        from pkcs11 import exceptions as p11
    except ImportError as exc:
        raise KeystoreUnavailable("a pkcs11: keystore needs python-pkcs11") from exc
    if not target.module.is_file():
        raise KeystoreUnavailable(f"the PKCS#11 module {target.module} does not exist")
    try:
        token = pkcs11.lib(str(target.module)).get_token(token_label=target.token)
    except p11.NoSuchToken as exc:
        raise KeystoreUnavailable(f"no PKCS#11 token labelled {target.token!r}") from exc
    except p11.PKCS11Error as exc:
        raise KeystoreUnavailable(f"the PKCS#11 module failed: {type(exc).__name__}") from exc
    pin = _pin(target, secret)
    try:
        return token.open(rw=True, user_pin=pin.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UnlockFailed("the PIN is not UTF-8 text") from exc
    except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange, p11.PinLocked) as exc:
        raise UnlockFailed(f"the token refused the PIN ({type(exc).__name__})") from exc
    except p11.UserAlreadyLoggedIn as exc:
        # PKCS#11 login state belongs to the process (v2.40 §5.6): a second login fails.
        raise KeystoreError(
            "this process already has the token open: share one keystore",
            code="keystore.already_open",
        ) from exc
    except p11.PKCS11Error as exc:
        raise KeystoreUnavailable(f"no session on the token: {type(exc).__name__}") from exc
    finally:
        wipe(pin)


def _pin(target: Pkcs11Uri, secret: bytes | bytearray | None) -> bytearray:
    if secret is not None and target.pin_source is not None:
        raise KeystoreError(
            "give the PIN as secret or as pin-source, not both", code="keystore.needs_secret"
        )
    if secret is not None:
        pin = bytearray(secret)
    elif target.pin_source is not None:
        pin = _read_source(target.pin_source)
    else:
        raise KeystoreError(
            "a pkcs11: keystore needs the PIN (secret, or ?pin-source=env:VAR)",
            code="keystore.needs_secret",
        )
    if not 0 < len(pin) <= MAX_PIN_SIZE:
        wipe(pin)
        raise KeystoreError(f"a PIN is 1-{MAX_PIN_SIZE} bytes", code="keystore.needs_secret")
    return pin


def _read_source(source: PinSource) -> bytearray:
    if source.kind == "env":
        value = os.environ.get(source.where)
        if not value:
            raise KeystoreError(
                f"the PIN variable {source.where} is not set", code="keystore.needs_secret"
            )
        return bytearray(value.encode("utf-8"))
    path = Path(source.where)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise KeystoreError(
            f"cannot read the PIN file {path}: {exc.strerror}", code="keystore.needs_secret"
        ) from exc
    with os.fdopen(fd, "rb") as handle:
        if stat.S_IMODE(os.fstat(handle.fileno()).st_mode) & 0o077:
            raise KeystoreError(
                f"{path} is readable or writable by others (chmod 600 it)",
                code="keystore.insecure_permissions",
            )
        pin = bytearray(MAX_PIN_SIZE + 2)
        size = handle.readinto(pin)
    del pin[size:]
    if pin.endswith(b"\n"):
        del pin[-1:]
    return pin
