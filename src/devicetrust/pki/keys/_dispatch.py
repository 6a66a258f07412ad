"""`open_key`, `generate_key`, `import_key`: pick the key backend by URI scheme, as
securesystemslib's SIGNER_FOR_URI_SCHEME does.

    file:    encrypted PKCS#8 file           needs `password=` (a `KeyPassword`)
    pkcs11:  key inside a PKCS#11 token      needs `pkcs11=` (a `Pkcs11Connection`)

Never guesses a backend: an unknown scheme is `pki.unsupported_key_scheme`, a missing secret
source is `pki.key_secret_missing`; never accepts a secret inside a URI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

from devicetrust.pki.keys import _file_backend, _pkcs11_backend
from devicetrust.pki.keys._algorithm import CaPrivateKey, KeyAlgorithm
from devicetrust.pki.keys._ca_key import CaKey
from devicetrust.pki.keys._errors import InvalidKeyUri, KeySecretMissing, UnsupportedKeyScheme
from devicetrust.pki.keys._password import KeyPassword
from devicetrust.pki.keys._pkcs11_session import Pkcs11Connection
from devicetrust.pki.keys._pkcs11_uri import Pkcs11Uri

_SCHEME_RE = re.compile(r"([a-z][a-z0-9+.-]*):")


class _Backend(Protocol):
    def open(
        self, uri: str, password: KeyPassword | None, pkcs11: Pkcs11Connection | None
    ) -> CaKey: ...

    def generate(
        self,
        uri: str,
        algorithm: KeyAlgorithm,
        password: KeyPassword | None,
        pkcs11: Pkcs11Connection | None,
    ) -> CaKey: ...


class _FileBackend:
    def open(
        self, uri: str, password: KeyPassword | None, pkcs11: Pkcs11Connection | None
    ) -> CaKey:
        return _file_backend.load(_file_backend.path_from_uri(uri), _need_password(password))

    def generate(
        self,
        uri: str,
        algorithm: KeyAlgorithm,
        password: KeyPassword | None,
        pkcs11: Pkcs11Connection | None,
    ) -> CaKey:
        path = _file_backend.path_from_uri(uri)
        return _file_backend.generate(path, algorithm, _need_password(password))


class _Pkcs11Backend:
    def open(
        self, uri: str, password: KeyPassword | None, pkcs11: Pkcs11Connection | None
    ) -> CaKey:
        return _pkcs11_backend.load(Pkcs11Uri.parse(uri), _need_connection(pkcs11))

    def generate(
        self,
        uri: str,
        algorithm: KeyAlgorithm,
        password: KeyPassword | None,
        pkcs11: Pkcs11Connection | None,
    ) -> CaKey:
        return _pkcs11_backend.generate(Pkcs11Uri.parse(uri), algorithm, _need_connection(pkcs11))


KEY_BACKEND_FOR_URI_SCHEME: Mapping[str, _Backend] = {
    _file_backend.SCHEME: _FileBackend(),
    _pkcs11_backend.SCHEME: _Pkcs11Backend(),
}


def key_uri_scheme(uri: str) -> str:
    """The scheme of a key URI (RFC 3986 §3.1, compared in lower case)."""
    if not isinstance(uri, str):
        raise InvalidKeyUri("a key URI is a string")
    match = _SCHEME_RE.match(uri.lower())
    if match is None:
        raise InvalidKeyUri("a key URI starts with a scheme, e.g. 'file:' or 'pkcs11:'")
    return match.group(1)


def open_key(
    uri: str,
    *,
    password: KeyPassword | None = None,
    pkcs11: Pkcs11Connection | None = None,
) -> CaKey:
    """Open the existing CA key at `uri`."""
    return _backend(uri).open(uri, password, pkcs11)


def generate_key(
    uri: str,
    algorithm: KeyAlgorithm = KeyAlgorithm.ECDSA_P256,
    *,
    password: KeyPassword | None = None,
    pkcs11: Pkcs11Connection | None = None,
) -> CaKey:
    """Create a new CA key where `uri` says (in this process for `file:`, inside the token for
    `pkcs11:`); refuses (`pki.key_exists`) to replace an existing one."""
    if not isinstance(algorithm, KeyAlgorithm):
        raise TypeError("algorithm is a KeyAlgorithm")
    return _backend(uri).generate(uri, algorithm, password, pkcs11)


def import_key(uri: str, private_key: CaPrivateKey, *, password: KeyPassword) -> CaKey:
    """Protect an existing (external CA's) private key as a `file:` key. Keys for a token are
    imported with the token's own tools, then opened by their `pkcs11:` URI."""
    scheme = key_uri_scheme(uri)
    if scheme != _file_backend.SCHEME:
        raise UnsupportedKeyScheme(
            f"import_key writes file: keys only, not {scheme}:", scheme=scheme
        )
    return _file_backend.store(_file_backend.path_from_uri(uri), private_key, password)


def _backend(uri: str) -> _Backend:
    scheme = key_uri_scheme(uri)
    backend = KEY_BACKEND_FOR_URI_SCHEME.get(scheme)
    if backend is None:
        known = ", ".join(f"{name}:" for name in KEY_BACKEND_FOR_URI_SCHEME)
        raise UnsupportedKeyScheme(
            f"no CA key backend for {scheme}: (known: {known})", scheme=scheme
        )
    return backend


def _need_password(password: KeyPassword | None) -> KeyPassword:
    if password is None:
        raise KeySecretMissing(
            "a file: CA key needs a password source (PassphrasePassword or KekPassword)"
        )
    return password


def _need_connection(pkcs11: Pkcs11Connection | None) -> Pkcs11Connection:
    if pkcs11 is None:
        raise KeySecretMissing("a pkcs11: CA key needs a Pkcs11Connection (module and PIN)")
    return pkcs11
