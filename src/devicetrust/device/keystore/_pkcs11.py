"""The `pkcs11:` keystore: P-256 keys generated on a PKCS#11 token (CKA_SENSITIVE, not
extractable, CKA_LABEL = the label) and small secrets kept as private token data objects
(CKO_DATA, CKA_PRIVATE: readable only after login with the PIN).

Tokens such as SoftHSM2 lack CKM_ECDSA_SHA256: the data is hashed here and the digest signed
with CKM_ECDSA; the raw r || s is converted to DER. TLS: `load_into` raises
`TlsKeyUnsupported` (no PKCS#11 provider for OpenSSL is packaged here); devices authenticate
with an ES256 JWT signed on the token (`sign_jwt`).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from devicetrust.device.keystore._base import (
    KeyExists,
    KeyNotFound,
    KeystoreCorrupt,
    KeystoreError,
)
from devicetrust.device.keystore._closing import ClosingStore
from devicetrust.device.keystore._hardware_key import HardwareKey
from devicetrust.device.keystore._labels import check_label, check_secret
from devicetrust.device.keystore._pkcs11_login import open_session
from devicetrust.device.keystore._uri import Pkcs11Uri

_APPLICATION = "devicetrust-keystore"
_COORDINATE_SIZE = 32


class Pkcs11Keystore(ClosingStore):
    """One logged-in session on the token; operations are serialised (a session is not
    thread-safe). Closing logs out."""

    def __init__(self, target: Pkcs11Uri, *, secret: bytes | bytearray | None = None) -> None:
        import pkcs11

        self._p11: Any = pkcs11
        self._session: Any = open_session(target, secret)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def kind(self) -> str:
        return "pkcs11"

    def create_key(self, label: str) -> Pkcs11DeviceKey:
        check_label(label)
        p11 = self._p11
        attribute = p11.Attribute
        with self._using() as session:
            if self._objects(session, p11.ObjectClass.PRIVATE_KEY, label) or self._objects(
                session, p11.ObjectClass.PUBLIC_KEY, label
            ):
                raise KeyExists(f"a key labelled {label!r} exists")
            from pkcs11.util.ec import encode_named_curve_parameters

            common = {attribute.TOKEN: True, attribute.LABEL: label}
            public, private = session.generate_keypair(
                p11.KeyType.EC,
                id=secrets.token_bytes(16),
                label=label,
                store=True,
                capabilities=p11.MechanismFlag.SIGN | p11.MechanismFlag.VERIFY,
                public_template={
                    **common,
                    attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1"),
                    attribute.VERIFY: True,
                },
                private_template={
                    **common,
                    attribute.PRIVATE: True,
                    attribute.SENSITIVE: True,
                    attribute.EXTRACTABLE: False,
                    attribute.SIGN: True,
                    attribute.DECRYPT: False,
                    attribute.DERIVE: False,
                    attribute.UNWRAP: False,
                },
            )
            return Pkcs11DeviceKey(self, label, private, _public_key(public))

    def key(self, label: str) -> Pkcs11DeviceKey:
        check_label(label)
        p11 = self._p11
        with self._using() as session:
            privates = self._objects(session, p11.ObjectClass.PRIVATE_KEY, label)
            if not privates:
                raise KeyNotFound(f"no key labelled {label!r}")
            if len(privates) > 1:
                raise KeystoreCorrupt(f"several private keys are labelled {label!r}")
            private = privates[0]
            if not private[p11.Attribute.SENSITIVE] or private[p11.Attribute.EXTRACTABLE]:
                raise KeystoreCorrupt(f"the token key {label!r} is extractable")
            key_id = private[p11.Attribute.ID]
            publics = list(
                session.get_objects(
                    {p11.Attribute.CLASS: p11.ObjectClass.PUBLIC_KEY, p11.Attribute.ID: key_id}
                )
            )
            if len(publics) != 1:
                raise KeystoreCorrupt(f"the public half of {label!r} is missing")
            return Pkcs11DeviceKey(self, label, private, _public_key(publics[0]))

    def delete_key(self, label: str) -> None:
        check_label(label)
        p11 = self._p11
        with self._using() as session:
            found = self._objects(session, p11.ObjectClass.PRIVATE_KEY, label)
            if not found:
                raise KeyNotFound(f"no key labelled {label!r}")
            for item in found + self._objects(session, p11.ObjectClass.PUBLIC_KEY, label):
                item.destroy()

    def labels(self) -> list[str]:
        p11 = self._p11
        with self._using() as session:
            found = session.get_objects(
                {
                    p11.Attribute.CLASS: p11.ObjectClass.PRIVATE_KEY,
                    p11.Attribute.KEY_TYPE: p11.KeyType.EC,
                }
            )
            return sorted({str(item[p11.Attribute.LABEL]) for item in found})

    def seal(self, label: str, secret: bytes | bytearray) -> None:
        check_label(label)
        check_secret(secret)
        p11 = self._p11
        attribute = p11.Attribute
        with self._using() as session:
            old = self._objects(session, p11.ObjectClass.DATA, label)
            session.create_object(
                {
                    attribute.CLASS: p11.ObjectClass.DATA,
                    attribute.TOKEN: True,
                    attribute.PRIVATE: True,
                    attribute.MODIFIABLE: False,
                    attribute.APPLICATION: _APPLICATION,
                    attribute.LABEL: label,
                    attribute.VALUE: bytes(secret),
                }
            )
            for item in old:  # the new object exists before the old one goes
                item.destroy()

    def unseal(self, label: str) -> bytearray:
        check_label(label)
        p11 = self._p11
        with self._using() as session:
            found = self._objects(session, p11.ObjectClass.DATA, label)
            if len(found) != 1:
                raise KeyNotFound(f"no secret labelled {label!r}")
            return bytearray(found[0][p11.Attribute.VALUE])

    def delete_secret(self, label: str) -> None:
        check_label(label)
        with self._using() as session:
            found = self._objects(session, self._p11.ObjectClass.DATA, label)
            if not found:
                raise KeyNotFound(f"no secret labelled {label!r}")
            for item in found:
                item.destroy()

    def sign_digest(self, private: Any, digest: bytes) -> bytes:
        with self._using():
            raw = private.sign(digest, mechanism=self._p11.Mechanism.ECDSA)
        if len(raw) != 2 * _COORDINATE_SIZE:
            raise KeystoreError(
                "the token returned a malformed signature", code="keystore.token_failed"
            )
        return utils.encode_dss_signature(
            int.from_bytes(raw[:_COORDINATE_SIZE], "big"),
            int.from_bytes(raw[_COORDINATE_SIZE:], "big"),
        )

    def _release(self) -> None:
        self._session.close()

    @contextmanager
    def _using(self) -> Iterator[Any]:
        with self._lock:
            self._open()
            try:
                yield self._session
            except self._p11.exceptions.PKCS11Error as exc:
                raise KeystoreError(
                    f"the PKCS#11 token failed: {type(exc).__name__}", code="keystore.token_failed"
                ) from exc

    def _objects(self, session: Any, object_class: Any, label: str) -> list[Any]:
        query = {self._p11.Attribute.CLASS: object_class, self._p11.Attribute.LABEL: label}
        if object_class == self._p11.ObjectClass.DATA:
            query[self._p11.Attribute.APPLICATION] = _APPLICATION
        return list(session.get_objects(query))


class Pkcs11DeviceKey(HardwareKey):
    """A key generated on the token; signs through C_Sign (CKM_ECDSA over SHA-256 digests)."""

    _scheme = "pkcs11"

    def __init__(
        self, store: Pkcs11Keystore, label: str, private: Any, public: ec.EllipticCurvePublicKey
    ) -> None:
        super().__init__(label, public)
        self._store = store
        self._private = private

    def _sign_digest(self, digest: bytes) -> bytes:
        return self._store.sign_digest(self._private, digest)


def _public_key(public: Any) -> ec.EllipticCurvePublicKey:
    from pkcs11.util.ec import encode_ec_public_key

    loaded = serialization.load_der_public_key(encode_ec_public_key(public))
    if not isinstance(loaded, ec.EllipticCurvePublicKey) or not isinstance(
        loaded.curve, ec.SECP256R1
    ):
        raise KeystoreCorrupt("the token key is not a P-256 key")
    return loaded
