"""The `pkcs11:` backend: a CA key generated and kept inside a PKCS#11 token (an HSM; SoftHSM2
in tests), which signs without the private key ever entering this process.

Keys are generated in the token as sensitive, non-extractable, sign-only token objects; a
key that is extractable or not sensitive is refused on load. ECDSA is hashed here (SHA-256 or
SHA-384 with `cryptography`) and signed with plain CKM_ECDSA, because tokens such as SoftHSM2
lack CKM_ECDSA_SHA256; the raw r || s is converted to DER. Certificates
and CRLs are built by `cryptography`, signed in the token and assembled by `_assembly`; OCSP
responses come from a delegated responder key instead (see `Pkcs11CaKey.sign_ocsp`).

Never exports, wraps or copies a private key out of the token; never returns a signature it
has not verified with the key's public half (a faulty token signature is an error, not a
certificate).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from typing import Any

from asn1crypto import core as asn1_core  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import ocsp
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.types import PrivateKey, PublicKey, SignMixin
from pkcs11.util.ec import encode_named_curve_parameters

from devicetrust.pki.keys import _assembly
from devicetrust.pki.keys._algorithm import (
    RSA_BITS,
    CaPrivateKey,
    CaPublicKey,
    KeyAlgorithm,
)
from devicetrust.pki.keys._ca_key import KeyHandle
from devicetrust.pki.keys._errors import (
    HsmFailure,
    InvalidKeyUri,
    KeyClosed,
    KeyExists,
    KeyNotFound,
    KeyNotProtected,
    SignatureInvalid,
    UnsupportedKeyAlgorithm,
    UnsupportedKeyOperation,
)
from devicetrust.pki.keys._pkcs11_session import Pkcs11Connection, TokenSession
from devicetrust.pki.keys._pkcs11_uri import Pkcs11Uri
from devicetrust.pki.keys._signature import ecdsa_raw_to_der, verify_signature

SCHEME = "pkcs11"
KEY_ID_SIZE = 16

# CKA_EC_PARAMS as DER (namedCurve OIDs; RFC 8410 id-Ed25519 for the Edwards curve). Some
# tokens store Ed25519 as the PrintableString "edwards25519" (PKCS#11 v3.0 §2.3.5).
_EC_PARAMS = {
    KeyAlgorithm.ECDSA_P256: encode_named_curve_parameters("secp256r1"),
    KeyAlgorithm.ECDSA_P384: encode_named_curve_parameters("secp384r1"),
    KeyAlgorithm.ED25519: encode_named_curve_parameters("1.3.101.112"),
}
_ED25519_PRINTABLE = asn1_core.PrintableString("edwards25519").dump()
_POINT_SIZE = {  # uncompressed EC point / Ed25519 public key bytes
    KeyAlgorithm.ECDSA_P256: 65,
    KeyAlgorithm.ECDSA_P384: 97,
    KeyAlgorithm.ED25519: 32,
}


class Pkcs11CaKey(KeyHandle):
    """A CA key inside a PKCS#11 token, reached through a shared logged-in session."""

    __slots__ = (
        "_algorithm",
        "_placeholder",
        "_placeholder_lock",
        "_private",
        "_public_key",
        "_token",
        "_uri",
    )

    def __init__(
        self,
        uri: Pkcs11Uri,
        algorithm: KeyAlgorithm,
        public_key: CaPublicKey,
        private: PrivateKey,
        token: TokenSession,
    ) -> None:
        self._uri = uri
        self._algorithm = algorithm
        self._public_key = public_key
        self._private: PrivateKey | None = private
        self._token = token
        self._placeholder: CaPrivateKey | None = None
        self._placeholder_lock = threading.Lock()

    @property
    def uri(self) -> str:
        return str(self._uri)

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    def public_key(self) -> CaPublicKey:
        return self._public_key

    def sign_bytes(self, data: bytes) -> bytes:
        private = self._private
        if private is None or not isinstance(private, SignMixin):
            raise KeyClosed("the CA key is closed", uri=self.uri)
        algorithm = self._algorithm
        with self._token.use():
            if algorithm is KeyAlgorithm.ED25519:
                signature = private.sign(data, mechanism=Mechanism.EDDSA)
            elif algorithm is KeyAlgorithm.RSA_3072:
                signature = private.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)
            else:
                digest = (
                    hashlib.sha384(data).digest()
                    if algorithm is KeyAlgorithm.ECDSA_P384
                    else hashlib.sha256(data).digest()
                )
                signature = ecdsa_raw_to_der(
                    private.sign(digest, mechanism=Mechanism.ECDSA), algorithm
                )
        try:
            verify_signature(self._public_key, algorithm, data, signature)
        except SignatureInvalid as exc:
            raise HsmFailure("the token returned a signature that does not verify") from exc
        return signature

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        placeholder = builder.sign(self._placeholder_key(), self._algorithm.hash_algorithm)
        return _assembly.certificate(
            placeholder, self.sign_bytes(placeholder.tbs_certificate_bytes)
        )

    def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder
    ) -> x509.CertificateRevocationList:
        placeholder = builder.sign(self._placeholder_key(), self._algorithm.hash_algorithm)
        return _assembly.crl(placeholder, self.sign_bytes(placeholder.tbs_certlist_bytes))

    def sign_ocsp(self, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse:
        """Not done in the token: `cryptography`'s OCSP builder refuses a signing key that does
        not match the responder certificate, so the placeholder technique cannot apply, and
        re-encoding the response by hand would be hand-rolled ASN.1. Use a delegated OCSP
        responder (RFC 6960 §4.2.2.2): this key issues a short-lived certificate with the
        OCSPSigning EKU to a `file:` key, which signs the responses."""
        raise UnsupportedKeyOperation(
            "a pkcs11: CA key does not sign OCSP responses itself; issue a delegated OCSP "
            "responder certificate (RFC 6960 §4.2.2.2) to a file: key and sign with that",
            uri=self.uri,
        )

    def close(self) -> None:
        """Forget the token handle and the placeholder key. Nothing secret of the CA key is in
        this process to zero; the session stays with its `Pkcs11Connection`."""
        self._private = None
        self._placeholder = None

    def __repr__(self) -> str:
        state = "closed" if self._private is None else self._algorithm.value
        return f"<Pkcs11CaKey {self.uri} {state}>"

    def _placeholder_key(self) -> CaPrivateKey:
        if self._private is None:
            raise KeyClosed("the CA key is closed", uri=self.uri)
        with self._placeholder_lock:
            if self._placeholder is None:
                self._placeholder = self._algorithm.generate_placeholder_key()
            return self._placeholder


def generate(uri: Pkcs11Uri, algorithm: KeyAlgorithm, connection: Pkcs11Connection) -> Pkcs11CaKey:
    """A new key pair generated inside the token, labelled `uri.object`."""
    token = connection.session(uri)
    key_id = uri.id if uri.id is not None else secrets.token_bytes(KEY_ID_SIZE)
    common: dict[Attribute, Any] = {Attribute.TOKEN: True}
    private_template: dict[Attribute, Any] = {
        **common,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,  # PKCS#11 v2.40 §4.9: value never readable
        Attribute.EXTRACTABLE: False,  # ... and never wrappable out of the token
        Attribute.SIGN: True,
        Attribute.DECRYPT: False,
        Attribute.UNWRAP: False,
        Attribute.DERIVE: False,
    }
    public_template: dict[Attribute, Any] = {
        **common,
        Attribute.PRIVATE: False,
        Attribute.VERIFY: True,
        Attribute.ENCRYPT: False,
        Attribute.WRAP: False,
    }
    with token.use() as session:
        taken = list(session.get_objects({Attribute.LABEL: uri.object}))
        taken += list(session.get_objects({Attribute.ID: key_id}))
        if taken:
            raise KeyExists("the token already holds an object with that label or id", uri=str(uri))
        if algorithm is KeyAlgorithm.RSA_3072:
            key_type, key_length = KeyType.RSA, RSA_BITS
        else:
            key_type = KeyType.EC_EDWARDS if algorithm is KeyAlgorithm.ED25519 else KeyType.EC
            key_length = None
            public_template[Attribute.EC_PARAMS] = _EC_PARAMS[algorithm]
        session.generate_keypair(
            key_type,
            key_length,
            id=key_id,
            label=uri.object,
            store=True,
            capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            public_template=public_template,
            private_template=private_template,
        )
    return load(Pkcs11Uri(uri.token, uri.object, key_id, uri.serial), connection)


def load(uri: Pkcs11Uri, connection: Pkcs11Connection) -> Pkcs11CaKey:
    """The key labelled `uri.object` (and with `uri.id`, if given). Checks in this order: one
    private key matches, it is sensitive and non-extractable, its public half is there and of
    a supported algorithm, and the pair signs and verifies."""
    token = connection.session(uri)
    query: dict[Attribute, Any] = {
        Attribute.CLASS: ObjectClass.PRIVATE_KEY,
        Attribute.LABEL: uri.object,
    }
    if uri.id is not None:
        query[Attribute.ID] = uri.id
    with token.use() as session:
        found = list(session.get_objects(query))
        if not found:
            raise KeyNotFound("no private key with that label in the token", uri=str(uri))
        if len(found) > 1:
            raise InvalidKeyUri("several private keys carry that label; add id=", uri=str(uri))
        private = found[0]
        if not isinstance(private, PrivateKey):
            raise KeyNotFound("the object is not a private key", uri=str(uri))
        if not private[Attribute.SENSITIVE] or private[Attribute.EXTRACTABLE]:
            raise KeyNotProtected(
                "the token key is extractable or not sensitive; CA keys must never leave the token",
                uri=str(uri),
            )
        # Pair by CKA_ID (PKCS#11 v2.40 §4.4); keys made without an id pair by label instead.
        key_id = bytes(private[Attribute.ID] or b"") or None
        pairing = {Attribute.ID: key_id} if key_id else {Attribute.LABEL: uri.object}
        publics = list(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, **pairing}))
        if len(publics) != 1 or not isinstance(publics[0], PublicKey):
            raise KeyNotFound("the key's public half is missing from the token", uri=str(uri))
        public_key = _public_key(publics[0])
    algorithm = KeyAlgorithm.of_public_key(public_key)
    key = Pkcs11CaKey(
        Pkcs11Uri(uri.token, uri.object, key_id, uri.serial), algorithm, public_key, private, token
    )
    key.sign_bytes(b"devicetrust: CA key pairing check")  # verifies, or raises
    return key


def _public_key(public: PublicKey) -> CaPublicKey:
    key_type = public[Attribute.KEY_TYPE]
    if key_type == KeyType.RSA:
        modulus = int.from_bytes(public[Attribute.MODULUS], "big")
        exponent = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    if key_type not in (KeyType.EC, KeyType.EC_EDWARDS):
        raise UnsupportedKeyAlgorithm(f"token key type {key_type!r} is not a CA key type")
    params = bytes(public[Attribute.EC_PARAMS])
    algorithms = [alg for alg, der in _EC_PARAMS.items() if der == params]
    if params == _ED25519_PRINTABLE:
        algorithms = [KeyAlgorithm.ED25519]
    if not algorithms:
        raise UnsupportedKeyAlgorithm("the token key's curve is not P-256, P-384 or Ed25519")
    algorithm = algorithms[0]
    point = bytes(public[Attribute.EC_POINT])
    try:
        if len(point) != _POINT_SIZE[algorithm]:
            # PKCS#11 v2.40 §2.3.3: CKA_EC_POINT is a DER OCTET STRING (some tokens omit it).
            point = asn1_core.OctetString.load(point, strict=True).native
        if algorithm is KeyAlgorithm.ED25519:
            return ed25519.Ed25519PublicKey.from_public_bytes(point)
        curve = algorithm.curve
        if curve is None:  # unreachable: the ECDSA entries have curves
            raise UnsupportedKeyAlgorithm("no curve for this algorithm")
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except (ValueError, TypeError) as exc:
        raise HsmFailure("the token holds a malformed public key") from exc
