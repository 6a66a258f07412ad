"""How devicetrust reaches a PKCS#11 token: `Pkcs11Config` (module + PIN source) and
`Pkcs11Connection` (the logged-in sessions, one per token, shared by the keys opened with it).

PKCS#11 login state belongs to the whole process, not to a session (PKCS#11 v2.40 §5.6:
C_Logout on any session logs every session out). So one connection holds one logged-in
session per token, serialises operations on it with a lock, and logs out only when closed.

Never takes a PIN from a URI, never logs, repr()s or puts a PIN in an error; reads the PIN
from its source only to log in and zeroes this module's copy at once.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import NoReturn, Protocol

import pkcs11
from pkcs11 import exceptions as p11_errors

from devicetrust.pki.keys._errors import (
    HsmFailure,
    InvalidKeyUri,
    KeyClosed,
    KeyNotFound,
    KeyNotProtected,
    KeySecretMissing,
    KeyUnlockFailed,
)
from devicetrust.pki.keys._pkcs11_uri import Pkcs11Uri

MAX_PIN_BYTES = 256


class PinSource(Protocol):
    """Where the token user PIN comes from. Returns it in a `bytearray` the caller zeroes."""

    def read_pin(self) -> bytearray: ...


@dataclass(frozen=True, slots=True)
class PinFromEnv:
    """The PIN from an environment variable (e.g. `DEVICETRUST_HSM_PIN`), read at login."""

    variable: str

    def read_pin(self) -> bytearray:
        value = os.environ.get(self.variable)
        if not value:
            raise KeySecretMissing(
                f"the HSM PIN variable {self.variable} is not set", variable=self.variable
            )
        return _checked(bytearray(value.encode("utf-8")))


@dataclass(frozen=True, slots=True)
class PinFromFile:
    """The PIN from a file readable by its owner only (like RFC 7512's pin-source, but named
    in configuration, not in the URI). One trailing newline is ignored."""

    path: Path

    def read_pin(self) -> bytearray:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            raise KeySecretMissing(
                f"cannot read the HSM PIN file: {exc.strerror}", path=str(self.path)
            ) from exc
        with os.fdopen(fd, "rb") as handle:
            if stat.S_IMODE(os.fstat(handle.fileno()).st_mode) & 0o077:
                raise KeyNotProtected(
                    "the HSM PIN file is readable by group or others (chmod 600 it)",
                    path=str(self.path),
                )
            pin = bytearray(MAX_PIN_BYTES + 2)
            size = handle.readinto(pin)
        del pin[size:]
        if pin.endswith(b"\n"):
            del pin[-1:]
        return _checked(pin)


class PinValue:
    """A PIN held in memory (typed at a prompt, or a test token's); zeroed by `close()`."""

    __slots__ = ("_pin",)

    def __init__(self, pin: str | bytes | bytearray) -> None:
        raw = pin.encode("utf-8") if isinstance(pin, str) else pin
        self._pin = _checked(bytearray(raw))

    def read_pin(self) -> bytearray:
        if not self._pin:
            raise KeyClosed("the PIN was zeroed")
        return bytearray(self._pin)

    def close(self) -> None:
        self._pin[:] = bytes(len(self._pin))
        self._pin = bytearray()

    def __repr__(self) -> str:
        return "<PinValue>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a PinValue holds a secret and cannot be pickled or copied")


def _checked(pin: bytearray) -> bytearray:
    if not 0 < len(pin) <= MAX_PIN_BYTES:
        pin[:] = bytes(len(pin))
        raise KeySecretMissing(f"an HSM PIN is 1-{MAX_PIN_BYTES} bytes")
    return pin


@dataclass(frozen=True, slots=True)
class Pkcs11Config:
    """The PKCS#11 module (shared library path) and where its user PIN comes from."""

    module: Path
    pin: PinSource


class TokenSession:
    """One logged-in read/write session on one token; `use()` hands it out under a lock."""

    __slots__ = ("_lock", "_session", "token_label")

    def __init__(self, token_label: str, session: pkcs11.Session) -> None:
        self.token_label = token_label
        self._session: pkcs11.Session | None = session
        self._lock = threading.Lock()

    @contextmanager
    def use(self) -> Iterator[pkcs11.Session]:
        """The session, exclusively, with PKCS#11 errors turned into `pki.hsm_failed`."""
        with self._lock:
            if self._session is None:
                raise KeyClosed("the PKCS#11 connection is closed", token=self.token_label)
            try:
                yield self._session
            except p11_errors.PKCS11Error as exc:
                raise HsmFailure(
                    f"the PKCS#11 token failed: {type(exc).__name__}", token=self.token_label
                ) from exc

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            try:
                session.close()  # C_Logout, then C_CloseSession
            except p11_errors.PKCS11Error as exc:
                raise HsmFailure(
                    f"closing the token session failed: {type(exc).__name__}",
                    token=self.token_label,
                ) from exc


class Pkcs11Connection:
    """A loaded PKCS#11 module and its logged-in token sessions. Pass it to `open_key` and
    `generate_key`; close it (or use it as a context manager) to log out."""

    __slots__ = ("_config", "_lib", "_lock", "_sessions")

    def __init__(self, config: Pkcs11Config) -> None:
        if not config.module.is_file():
            raise HsmFailure("the PKCS#11 module does not exist", module=str(config.module))
        self._config = config
        try:
            self._lib = pkcs11.lib(str(config.module))
        except p11_errors.PKCS11Error as exc:
            raise HsmFailure(
                f"the PKCS#11 module does not load: {exc}", module=str(config.module)
            ) from exc
        self._lock = threading.Lock()
        self._sessions: dict[tuple[str, str | None], TokenSession] | None = {}

    def session(self, uri: Pkcs11Uri) -> TokenSession:
        """The logged-in session on the token `uri` names, opened at first use."""
        with self._lock:
            if self._sessions is None:
                raise KeyClosed("the PKCS#11 connection is closed")
            key = (uri.token, uri.serial)
            if key not in self._sessions:
                self._sessions[key] = TokenSession(uri.token, self._login(uri))
            return self._sessions[key]

    def close(self) -> None:
        """Log out of every token and close the sessions; keys opened here stop working."""
        with self._lock:
            sessions, self._sessions = self._sessions, None
        failures: list[HsmFailure] = []
        for token_session in (sessions or {}).values():
            try:
                token_session.close()
            except HsmFailure as exc:  # close the others, then report
                failures.append(exc)
        if failures:
            raise failures[0]

    def __enter__(self) -> Pkcs11Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._sessions is None else f"{len(self._sessions)} token(s)"
        return f"<Pkcs11Connection {self._config.module} {state}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a PKCS#11 connection cannot be pickled or copied")

    def _login(self, uri: Pkcs11Uri) -> pkcs11.Session:
        serial = uri.serial.encode("utf-8") if uri.serial is not None else None
        try:
            token = self._lib.get_token(token_label=uri.token, token_serial=serial)
        except p11_errors.NoSuchToken as exc:
            raise KeyNotFound("no PKCS#11 token with that label", token=uri.token) from exc
        except p11_errors.MultipleTokensReturned as exc:
            raise InvalidKeyUri(
                "several tokens carry that label; add serial= to the URI", token=uri.token
            ) from exc
        except p11_errors.PKCS11Error as exc:
            raise HsmFailure(f"listing tokens failed: {type(exc).__name__}") from exc
        pin = self._config.pin.read_pin()
        try:
            # python-pkcs11 takes the PIN as str: that copy cannot be zeroed.
            return token.open(rw=True, user_pin=pin.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise KeySecretMissing("the HSM PIN is not UTF-8 text") from exc
        except (p11_errors.PinIncorrect, p11_errors.PinInvalid, p11_errors.PinLenRange) as exc:
            raise KeyUnlockFailed("the HSM rejected the PIN", token=uri.token) from exc
        except (p11_errors.PinLocked, p11_errors.PinExpired) as exc:
            raise KeyUnlockFailed(
                f"the token's user PIN is unusable ({type(exc).__name__})", token=uri.token
            ) from exc
        except p11_errors.UserAlreadyLoggedIn as exc:
            raise HsmFailure(
                "this process is already logged in to the token through another connection; "
                "share one Pkcs11Connection per module",
                token=uri.token,
            ) from exc
        except p11_errors.PKCS11Error as exc:
            raise HsmFailure(f"opening a token session failed: {type(exc).__name__}") from exc
        finally:
            pin[:] = bytes(len(pin))
