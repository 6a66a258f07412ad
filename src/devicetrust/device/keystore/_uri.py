"""The keystore URI grammar (docs/device-keystores.md), parsed into one frozen value per
scheme. Parsing only: nothing here opens a file, a token or a TPM.

    file:<path>[?tpm=<tcti>]
    pkcs11:module=<path>;token=<label>[?pin-source=env:<VAR>|file:<path>]
    tpm2:<tcti>?dir=<path>
    memory:[<name>]               (process memory only: simulators and tests)

Query values are percent-decoded; unknown or repeated parameters are refused (fail closed),
and a PIN or a secret is never accepted in a URI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from devicetrust.device.keystore._base import InvalidKeystoreUri


@dataclass(frozen=True, slots=True)
class FileUri:
    path: Path
    tpm: str | None = None  # the TCTI of a TPM that seals the store key


@dataclass(frozen=True, slots=True)
class PinSource:
    """Where the PIN comes from when the caller does not pass it: `env` or `file`."""

    kind: str
    where: str


@dataclass(frozen=True, slots=True)
class Pkcs11Uri:
    module: Path
    token: str
    pin_source: PinSource | None = None


@dataclass(frozen=True, slots=True)
class MemoryUri:
    name: str = ""  # a tag for messages; every open is a new, empty store


@dataclass(frozen=True, slots=True)
class Tpm2Uri:
    tcti: str
    directory: Path


KeystoreUri = FileUri | Pkcs11Uri | Tpm2Uri | MemoryUri


def parse_keystore_uri(uri: str) -> KeystoreUri:
    scheme, colon, rest = uri.partition(":")
    if scheme == "memory" and colon:
        return _memory(rest)
    if not colon or not rest:
        raise InvalidKeystoreUri("a keystore URI is file:, pkcs11: or tpm2: followed by a target")
    body, _, query = rest.partition("?")
    params = _query(query)
    if scheme == "file":
        return _file(body, params)
    if scheme == "pkcs11":
        return _pkcs11(body, params)
    if scheme == "tpm2":
        return _tpm2(body, params)
    raise InvalidKeystoreUri(
        f"unknown keystore scheme {scheme!r} (file, pkcs11, tpm2, memory)")


def _file(body: str, params: dict[str, str]) -> FileUri:
    _only(params, {"tpm"}, "file:")
    path = body[2:] if body.startswith("///") else body  # file:///abs/path
    if not path or path.startswith("//"):
        raise InvalidKeystoreUri("file: needs a path (file:/var/lib/dt/keystore.json)")
    tpm = params.get("tpm")
    if tpm is not None and not tpm:
        raise InvalidKeystoreUri("file:...?tpm= needs a TCTI (tpm=device:/dev/tpmrm0)")
    return FileUri(Path(unquote(path)), tpm)


def _pkcs11(body: str, params: dict[str, str]) -> Pkcs11Uri:
    _only(params, {"pin-source"}, "pkcs11:")
    attributes: dict[str, str] = {}
    for part in body.split(";"):
        name, equals, value = part.partition("=")
        if not equals or not value or name in attributes:
            raise InvalidKeystoreUri("pkcs11: attributes are name=value pairs separated by ';'")
        attributes[name] = unquote(value)
    if "pin-value" in attributes or "pin" in attributes:
        raise InvalidKeystoreUri("a PIN never goes in a URI: pass it as secret or pin-source")
    if set(attributes) != {"module", "token"}:
        raise InvalidKeystoreUri("pkcs11: needs exactly module=<path>;token=<label>")
    source = params.get("pin-source")
    return Pkcs11Uri(
        Path(attributes["module"]),
        attributes["token"],
        None if source is None else _pin_source(source),
    )


def _pin_source(source: str) -> PinSource:
    kind, colon, where = source.partition(":")
    if not colon or not where or kind not in ("env", "file"):
        raise InvalidKeystoreUri("pin-source is env:<VARIABLE> or file:<path>")
    return PinSource(kind, where)


def _memory(rest: str) -> MemoryUri:
    if "?" in rest:
        raise InvalidKeystoreUri("memory: takes no parameter (memory:<name>)")
    return MemoryUri(unquote(rest))


def _tpm2(body: str, params: dict[str, str]) -> Tpm2Uri:
    _only(params, {"dir"}, "tpm2:")
    if not body:
        raise InvalidKeystoreUri("tpm2: needs a TCTI (tpm2:device:/dev/tpmrm0?dir=...)")
    directory = params.get("dir")
    if not directory:
        raise InvalidKeystoreUri("tpm2: needs ?dir=<directory for the key blobs>")
    return Tpm2Uri(body, Path(directory))


def _query(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    if not query:
        return params
    for part in query.split("&"):
        name, equals, value = part.partition("=")
        if not equals or name in params:
            raise InvalidKeystoreUri("query parameters are name=value pairs, each given once")
        params[name] = unquote(value)
    return params


def _only(params: dict[str, str], allowed: set[str], scheme: str) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidKeystoreUri(f"{scheme} takes no parameter {unknown[0]!r}")
