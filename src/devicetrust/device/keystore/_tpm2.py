"""The `tpm2:` keystore: P-256 keys created inside the TPM under its storage root key
(fixedTPM, fixedParent, sensitiveDataOrigin, sign), and small secrets sealed to it,
optionally to PCR values. The private parts never leave the TPM in clear.

What is on disk (`dir`, 0700): one 0600 JSON file per object, `<label>.key.json` or
`<label>.sealed.json`, holding the TPM2B_PUBLIC and the TPM2B_PRIVATE that only this TPM's
storage root key unwraps; they are reloaded after a restart. Every TPM object and session is
flushed after each operation (no resource manager needed).

TLS: `load_into` raises `TlsKeyUnsupported`. The tpm2-openssl provider needs more transient
object slots than a TPM without a resource manager offers (it duplicates the loaded key per
handshake); devices authenticate with an ES256 JWT signed in the TPM instead (`sign_jwt`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

from devicetrust.device.keystore._atomic import private_directory, write_private
from devicetrust.device.keystore._base import (
    KeyExists,
    KeyNotFound,
    KeystoreCorrupt,
    KeystoreError,
)
from devicetrust.device.keystore._closing import ClosingStore
from devicetrust.device.keystore._file_format import b64, unb64
from devicetrust.device.keystore._hardware_key import HardwareKey
from devicetrust.device.keystore._labels import check_label, check_secret
from devicetrust.device.keystore._tpm_errors import tpm_errors_as_keystore
from devicetrust.device.keystore._uri import Tpm2Uri
from devicetrust.device.tpm._keystore import SealedObject, TpmKey, TpmKeystore

BLOB_FORMAT = "devicetrust-tpm2-blob/1"
_KEY, _SEALED = "key", "sealed"


class Tpm2Keystore(ClosingStore):
    """One open TPM (`target.tcti`) and its blob directory. Thread-safe: one TPM command
    sequence at a time."""

    def __init__(self, target: Tpm2Uri) -> None:
        self._directory = private_directory(target.directory)
        self._lock = threading.Lock()
        with tpm_errors_as_keystore():
            self._tpm = TpmKeystore(target.tcti)
        self._closed = False

    @property
    def kind(self) -> str:
        return "tpm2"

    @property
    def tpm(self) -> TpmKeystore:
        """The underlying TPM connection (EK, AK, credential activation for provisioning);
        use it only while this keystore is open."""
        return self._tpm

    def create_key(self, label: str) -> TpmDeviceKey:
        path = self._path(label, _KEY)
        with self._lock, tpm_errors_as_keystore():
            self._open()
            if path.exists():
                raise KeyExists(f"a key labelled {label!r} exists")
            blob = self._tpm.create_key()
            _write_blob(path, _KEY, blob.public, blob.private, ())
            return TpmDeviceKey(self, label, blob)

    def key(self, label: str) -> TpmDeviceKey:
        self._open()
        public, private, _ = _read_blob(self._path(label, _KEY), _KEY, label)
        return TpmDeviceKey(self, label, TpmKey(public=public, private=private))

    def delete_key(self, label: str) -> None:
        self._open()
        _remove(self._path(label, _KEY), label)

    def labels(self) -> list[str]:
        self._open()
        suffix = f".{_KEY}.json"
        return sorted(p.name[: -len(suffix)] for p in self._directory.glob(f"*{suffix}"))

    def seal(self, label: str, secret: bytes | bytearray, *, pcrs: Sequence[int] = ()) -> None:
        """Seal `secret` in the TPM; with `pcrs`, it unseals only while those SHA-256 PCRs
        hold their current values (a measured-boot change makes `unseal` fail)."""
        path = self._path(label, _SEALED)
        check_secret(secret)
        with self._lock, tpm_errors_as_keystore():
            self._open()
            sealed = self._tpm.seal(secret, pcrs=tuple(pcrs))
            _write_blob(path, _SEALED, sealed.public, sealed.private, sealed.pcrs)

    def unseal(self, label: str) -> bytearray:
        public, private, pcrs = _read_blob(self._path(label, _SEALED), _SEALED, label)
        with self._lock, tpm_errors_as_keystore():
            self._open()
            return self._tpm.unseal(SealedObject(public, private, pcrs))

    def delete_secret(self, label: str) -> None:
        self._open()
        _remove(self._path(label, _SEALED), label)

    def _release(self) -> None:
        self._tpm.close()

    def sign_digest(self, blob: TpmKey, digest: bytes) -> bytes:
        with self._lock, tpm_errors_as_keystore():
            self._open()
            return self._tpm.sign_digest(blob, digest)

    def _path(self, label: str, kind: str) -> Path:
        return self._directory / f"{check_label(label)}.{kind}.json"


class TpmDeviceKey(HardwareKey):
    """A key whose private part only the TPM can use; signs through TPM2_Sign."""

    _scheme = "tpm2"

    def __init__(self, store: Tpm2Keystore, label: str, blob: TpmKey) -> None:
        with tpm_errors_as_keystore():
            public = store.tpm.public_key(blob)
        super().__init__(label, public)
        self._store = store
        self._blob = blob

    @property
    def blob(self) -> TpmKey:
        """The wrapped key, for `TpmKeystore.certify` and `answer_challenge` (provisioning)."""
        return self._blob

    def _sign_digest(self, digest: bytes) -> bytes:
        return self._store.sign_digest(self._blob, digest)


def _write_blob(path: Path, kind: str, public: bytes, private: bytes, pcrs: Sequence[int]) -> None:
    document = {
        "format": BLOB_FORMAT,
        "kind": kind,
        "public": b64(public),
        "private": b64(private),
        "pcrs": list(pcrs),
    }
    write_private(path, json.dumps(document, sort_keys=True).encode("utf-8"))


def _read_blob(path: Path, kind: str, label: str) -> tuple[bytes, bytes, tuple[int, ...]]:
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise KeyNotFound(f"no {'key' if kind == _KEY else 'secret'} labelled {label!r}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KeystoreCorrupt(f"{path} is not a TPM blob file") from exc
    except OSError as exc:
        raise KeystoreError(
            f"cannot read {path}: {exc.strerror}", code="keystore.read_failed"
        ) from exc
    if not isinstance(document, dict) or document.get("format") != BLOB_FORMAT:
        raise KeystoreCorrupt(f"{path} is not a {BLOB_FORMAT} file")
    pcrs = document.get("pcrs")
    if document.get("kind") != kind or not isinstance(pcrs, list):
        raise KeystoreCorrupt(f"{path} is not a {kind} blob")
    if not all(isinstance(pcr, int) for pcr in pcrs):
        raise KeystoreCorrupt(f"{path} names invalid PCRs")
    return unb64(document.get("public")), unb64(document.get("private")), tuple(pcrs)


def _remove(path: Path, label: str) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        raise KeyNotFound(f"nothing labelled {label!r}") from None
