"""The device's half of attestation evidence, sans-I/O: what it signs or MACs, and the JSON
fields it sends (the server's `provisioning.x509` and `provisioning.symmetric` read the same
formats; the integration tests pin both sides together).

    x509:           message = "devicetrust-provisioning-x509-v1\\n" challenge_id "\\n" nonce
                              "\\n" physical_id "\\n" hex(SHA-256(csr bytes as sent)),
                    signed by the birth-certificate key (ECDSA P-256, SHA-256, DER)
    symmetric-key:  token = base64url(claims) "." base64url(HMAC-SHA256(device_key, claims)),
                    claims = {"exp", "nonce", "registration_id"} as compact sorted JSON

Never touches a socket, a file or the clock (times are passed in); never keeps a key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from devicetrust.device.keystore import DeviceKey

X509_LABEL = "devicetrust-provisioning-x509-v1"


def b64url(data: bytes | bytearray) -> str:
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode("ascii")


def csr_pem(key: DeviceKey) -> bytes:
    """A PKCS#10 request for `key`, signed inside the keystore. The subject is empty: the CA
    takes the names from the registry, never from the request."""
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return request.sign(key.signer(), hashes.SHA256()).public_bytes(Encoding.PEM)


def x509_message(challenge_id: str, nonce: str, physical_id: str, csr: bytes) -> bytes:
    """The bytes the birth key signs: binds the server's nonce to this unit and this CSR."""
    digest = hashlib.sha256(csr).hexdigest()
    return f"{X509_LABEL}\n{challenge_id}\n{nonce}\n{physical_id}\n{digest}".encode()


def x509_evidence(
    birth_key: DeviceKey, birth_chain_pem: str, challenge_id: str, nonce: str,
    physical_id: str, csr: bytes,
) -> dict[str, str]:
    signature = birth_key.sign(x509_message(challenge_id, nonce, physical_id, csr))
    return {
        "challenge_id": challenge_id,
        "birth_chain": birth_chain_pem,
        "signature": b64url(signature),
    }


def derive_member_key(group_key: bytes | bytearray, physical_id: str) -> bytearray:
    """HMAC-SHA256(group_key, physical_id): a group member's device key (the caller wipes it)."""
    return bytearray(hmac.digest(bytes(group_key), physical_id.encode("ascii"), hashlib.sha256))


def symmetric_token(
    device_key: bytes | bytearray, physical_id: str, expires_at: datetime, nonce: str | None = None
) -> str:
    """A single-use provisioning token (its nonce is fresh from the CSPRNG unless given)."""
    claims = json.dumps(
        {
            "registration_id": physical_id,
            "exp": int(expires_at.timestamp()),
            "nonce": nonce if nonce is not None else secrets.token_urlsafe(24),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    mac = hmac.digest(bytes(device_key), claims, hashlib.sha256)
    return f"{b64url(claims)}.{b64url(mac)}"
