"""Certificate renewal by EST simplereenroll (RFC 7030 §4.2.2) with the TLS client
certificate the device holds (§3.3.2): a new key in the keystore, its CSR, the new
certificate.

Returns the renewed state without saving it and without deleting anything: the client
saves it, reconnects with it, and deletes the old key only then, so a failure at any step
leaves a working credential.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs7

from devicetrust.device.client._errors import ProvisioningRefused, RenewalFailed
from devicetrust.device.client._evidence import csr_pem
from devicetrust.device.client._https import request, tls_context
from devicetrust.device.client._state import DeviceState
from devicetrust.device.keystore import Keystore, TlsKeyUnsupported

REENROLL_PATH = "/.well-known/est/simplereenroll"


def reenroll(
    state: DeviceState, keystore: Keystore, ca_bundle: str, *, timeout: float = 30.0
) -> DeviceState:
    """A new key and certificate for the unit; `RenewalFailed` leaves nothing behind."""
    context = tls_context(ca_bundle)
    try:
        keystore.key(state.key_label).load_into(context, state.certificate_chain_pem.encode())
    except TlsKeyUnsupported as exc:
        raise RenewalFailed(
            "this keystore cannot do TLS client authentication: renew by re-provisioning",
            code="device.renewal_needs_tls_key",
        ) from exc
    label = f"operational-{secrets.token_hex(4)}"
    key = keystore.create_key(label)
    try:
        csr = x509.load_pem_x509_csr(csr_pem(key)).public_bytes(Encoding.DER)
        try:
            answer = request(
                context, state.api_url + REENROLL_PATH, base64.b64encode(csr),
                content_type="application/pkcs10", timeout=timeout,
            )
        except ProvisioningRefused as exc:
            raise RenewalFailed(f"the server refused the renewal: {exc}", code=exc.code) from exc
        if answer.status != 200:
            raise RenewalFailed(
                f"the server answered {answer.status} (retry later)", code="device.renewal_pending"
            )
        leaf = _issued_for(answer.body, key.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
    except BaseException:
        keystore.delete_key(label)
        raise
    cas = _cas_of(state.certificate_chain_pem)
    return state.renewed(label, leaf.public_bytes(Encoding.PEM).decode() + cas)


def _issued_for(body: bytes, spki: bytes) -> x509.Certificate:
    try:
        certificates = pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))
    except (ValueError, binascii.Error) as exc:
        raise RenewalFailed("the renewal answer is not certs-only PKCS#7") from exc
    for certificate in certificates:
        own = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        if own == spki:
            return certificate
    raise RenewalFailed("the renewal answer holds no certificate for the new key")


def _cas_of(chain_pem: str) -> str:
    """The CA part of a chain (everything after the leaf)."""
    certificates = x509.load_pem_x509_certificates(chain_pem.encode())
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certificates[1:])
