"""The gateway's TLS server certificate, issued by the platform's CA and renewed in place.

    certificate = ServerCertificate(pki, names=["mqtt.example.com", "localhost"],
                                    addresses=["127.0.0.1"], lifetime=timedelta(hours=24))
    context = certificate.issue()            # the SSLContext the gateway listens with
    ...
    if certificate.renewal_due(clock.now()): # at 2/3 of its lifetime
        certificate.renew(running.call)      # new connections get the new certificate

Each certificate gets a fresh P-256 key, generated in memory. The key reaches OpenSSL
through a file encrypted with a random one-time password, in a private temporary folder
deleted at once: no clear key is ever on disk. Renewal loads the new chain into the *same*
SSLContext (the listening socket keeps it), on the gateway's loop through `apply`, so no
handshake reads the context while it changes; OpenSSL copies the certificate into each
connection when it is created, so live connections keep theirs until they end.

Never serves a certificate the CA has not recorded (`issue_from_csr` commits it first).
"""

from __future__ import annotations

import secrets
import ssl
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devicetrust.pki import CaRole, IssuedCertificate, PkiService, Profile

from .config import server_tls_context

# Runs a loader of the context where it is safe to change it (`GatewayThread.call`).
Apply = Callable[[Callable[[], ssl.SSLContext]], ssl.SSLContext]
RENEW_AT = 2 / 3  # of the lifetime


class ServerCertificate:
    def __init__(self, pki: PkiService, *, names: Sequence[str], addresses: Sequence[str],
                 lifetime: timedelta, actor: str) -> None:
        if lifetime <= timedelta(0):
            raise ValueError("lifetime must be positive")
        self._pki = pki
        self._names = list(names)
        self._addresses = list(addresses)
        self._lifetime = lifetime
        self._actor = actor
        self._context: ssl.SSLContext | None = None
        self.current: IssuedCertificate | None = None
        self.renewals = 0

    def issue(self) -> ssl.SSLContext:
        """Issue the first certificate and return the gateway's TLS context."""
        if self._context is not None:
            raise RuntimeError("already issued: renew() it")
        self._context = self._issue_and_load(None, _now)
        return self._context

    def renewal_at(self) -> datetime:
        issued = self.current
        if issued is None:
            raise RuntimeError("not issued yet")
        return issued.issued_at + (issued.not_after - issued.issued_at) * RENEW_AT

    def renewal_due(self, now: datetime) -> bool:
        return self.current is not None and now >= self.renewal_at()

    def renew(self, apply: Apply) -> IssuedCertificate:
        """Issue a new certificate and key and load them into the context through `apply`
        (e.g. `GatewayThread.call`: run on the gateway's loop)."""
        if self._context is None:
            raise RuntimeError("not issued yet")
        self._issue_and_load(self._context, apply)
        self.renewals += 1
        assert self.current is not None
        return self.current

    def _issue_and_load(self, context: ssl.SSLContext | None, apply: Apply) -> ssl.SSLContext:
        pki = self._pki
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
               .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        issued = pki.issue_from_csr(csr, None, Profile.SERVER, actor=self._actor,
                                    dns_names=self._names, ip_addresses=self._addresses,
                                    lifetime=self._lifetime)
        password = bytearray(secrets.token_bytes(32))
        cas = [c for c in pki.list_cas() if c.role in (CaRole.ROOT, CaRole.ISSUING)]
        try:
            with tempfile.TemporaryDirectory(prefix="devicetrust-gateway-") as folder:
                chain, key_file, clients = (Path(folder) / n
                                            for n in ("chain.pem", "key.pem", "clients.pem"))
                chain.write_text(issued.pem + pki.chain_pem(CaRole.ISSUING))
                key_file.write_bytes(key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.BestAvailableEncryption(bytes(password))))
                clients.write_text("".join(c.pem for c in cas))

                def load() -> ssl.SSLContext:
                    if context is None:
                        return server_tls_context(chain, key_file, clients,
                                                  key_password=bytes(password))
                    context.load_cert_chain(chain, key_file, password=bytes(password))
                    context.load_verify_locations(cafile=str(clients))  # a rotated issuing CA
                    return context

                loaded = apply(load)
        finally:
            password[:] = bytes(len(password))
        self.current = issued
        return loaded


def _now(load: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    return load()
