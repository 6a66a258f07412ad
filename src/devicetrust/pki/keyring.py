"""`Keyring`: where new CA keys are created and how existing ones are opened, through the key
backends of `devicetrust.pki.keys`.

Online keys (issuing, manufacturing and OCSP-signer keys) are opened once and kept open until
`close()`. The root key is never cached: `offline()` opens it for one step and closes it when
the step ends, so it can live on a token that is plugged in only for a rotation.

CA keys go to the PKCS#11 token when a connection and token label are configured, else to
encrypted PKCS#8 files under `key_dir`. Delegated OCSP signer keys are always encrypted files:
`cryptography`'s OCSP builder signs only with a key it holds (see `CaKey.sign_ocsp`).

Never writes a key in clear, never logs a password, and never hands a key to anything but
the CA service that owns this keyring.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from devicetrust.pki.keys import (
    CaKey,
    CaPrivateKey,
    KeyAlgorithm,
    KeyPassword,
    KeySecretMissing,
    Pkcs11Connection,
    generate_key,
    import_key,
    open_key,
)


class Keyring:
    def __init__(
        self,
        key_dir: Path,
        *,
        password: KeyPassword,
        pkcs11: Pkcs11Connection | None = None,
        pkcs11_token: str | None = None,
    ) -> None:
        """`password` protects file keys (`PassphrasePassword` or `KekPassword`); it is
        needed even with a token, for the OCSP signer keys. `pkcs11` + `pkcs11_token` put new
        CA keys in that token. Both are borrowed: `close()` closes the keys this keyring
        opened, not the sources."""
        if password is None:
            raise KeySecretMissing("a keyring needs a password source for its file keys")
        if (pkcs11 is None) != (pkcs11_token is None):
            raise ValueError("pkcs11 and pkcs11_token are given together")
        self._key_dir = Path(key_dir)
        self._password = password
        self._pkcs11 = pkcs11
        self._token = pkcs11_token
        self._online: dict[str, CaKey] = {}
        self._lock = threading.Lock()

    @property
    def uses_token(self) -> bool:
        return self._pkcs11 is not None

    # ---- new keys ------------------------------------------------------------------------

    def new_ca_key(self, label: str, algorithm: KeyAlgorithm) -> CaKey:
        """A new CA key named by `label` (unique: callers include a fresh id)."""
        if self._pkcs11 is not None and self._token is not None:
            token, label = quote(self._token, safe=""), quote(label, safe="")
            uri = f"pkcs11:token={token};object={label}"
            return generate_key(uri, algorithm, pkcs11=self._pkcs11)
        return generate_key(self._file_uri(label), algorithm, password=self._password)

    def new_file_key(self, label: str, algorithm: KeyAlgorithm) -> CaKey:
        return generate_key(self._file_uri(label), algorithm, password=self._password)

    def import_private_key(self, label: str, private_key: CaPrivateKey) -> CaKey:
        """Protect an external CA's private key as an encrypted file key."""
        return import_key(self._file_uri(label), private_key, password=self._password)

    def _file_uri(self, label: str) -> str:
        self._key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return (self._key_dir.absolute() / f"{label}.key.pem").as_uri()

    # ---- existing keys -------------------------------------------------------------------

    def online(self, uri: str) -> CaKey:
        """An issuing-side key, opened on first use and kept open."""
        with self._lock:
            key = self._online.get(uri)
            if key is None:
                key = open_key(uri, password=self._password, pkcs11=self._pkcs11)
                self._online[uri] = key
            return key

    def keep(self, key: CaKey) -> CaKey:
        """Keep a key just generated or imported open under its URI."""
        with self._lock:
            previous = self._online.setdefault(key.uri, key)
        if previous is not key:
            key.close()
        return previous

    def offline_open(self, uri: str) -> CaKey:
        """A key opened for the caller alone, not cached: the caller closes it."""
        return open_key(uri, password=self._password, pkcs11=self._pkcs11)

    @contextmanager
    def offline(self, uri: str) -> Iterator[CaKey]:
        """A key (the root's) opened for one step and closed after it."""
        key = self.offline_open(uri)
        try:
            yield key
        finally:
            key.close()

    def close(self) -> None:
        with self._lock:
            keys, self._online = list(self._online.values()), {}
        for key in keys:
            key.close()


def key_label(role: str, ca_id: str) -> str:
    """`issuing-3f2a...`: within a PKCS#11 label's 32 bytes, unique through the id."""
    return f"{role}-{ca_id.replace('-', '')[:16]}"


def signer_label(ca_id: str) -> str:
    return f"ocsp-{ca_id.replace('-', '')[:12]}-{secrets.token_hex(4)}"
