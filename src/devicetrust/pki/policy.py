"""`PkiPolicy`: lifetimes, clock-skew backdate, CRL periods and the public URLs written into
certificates. A plain value the composition root builds from settings; the CA never reads
configuration itself.

Never accepts a public URL with credentials, a query or a fragment (it is copied into every
certificate), nor a lifetime that is zero, negative or beyond the profile's maximum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from devicetrust.pki.errors import InvalidRequest
from devicetrust.pki.records import KeyReuse, Profile

# Upper bounds an operator may ask for per profile. Operational certificates are meant to be
# short-lived (hours); a server certificate follows the CA/B Forum 398-day cap; a delegated
# OCSP signer with id-pkix-ocsp-nocheck cannot itself be revoked, so it stays short
# (RFC 6960 §4.2.2.2.1).
MAX_LIFETIME: dict[Profile, timedelta] = {
    Profile.DEVICE: timedelta(days=90),
    Profile.BIRTH: timedelta(days=365 * 30),
    Profile.SERVER: timedelta(days=397),
    Profile.OCSP_SIGNER: timedelta(days=90),
}


def _default_lifetimes() -> dict[Profile, timedelta]:
    return {
        Profile.DEVICE: timedelta(hours=24),
        Profile.BIRTH: timedelta(days=365 * 20),
        Profile.SERVER: timedelta(days=90),
        Profile.OCSP_SIGNER: timedelta(days=30),
    }


@dataclass(frozen=True, slots=True)
class PkiPolicy:
    public_url: str = "http://127.0.0.1:8080"
    organization: str = "devicetrust"
    # not_before is set this far in the past so a device whose clock runs a little behind
    # accepts a certificate it has just received.
    clock_skew: timedelta = timedelta(minutes=5)
    lifetimes: dict[Profile, timedelta] = field(default_factory=_default_lifetimes)
    root_lifetime: timedelta = timedelta(days=365 * 25)
    manufacturing_ca_lifetime: timedelta = timedelta(days=365 * 22)
    issuing_ca_lifetime: timedelta = timedelta(days=365 * 5)
    crl_validity: timedelta = timedelta(hours=24)
    # The root key is normally offline, so its CRL (covering only CA certificates) lasts longer.
    root_crl_validity: timedelta = timedelta(days=30)
    # A CRL is re-signed once this fraction of its validity has passed, so relying parties
    # never hold one that is about to lapse.
    crl_refresh_fraction: float = 0.5
    # An OCSP signer certificate is renewed when less than this fraction of its life is left.
    ocsp_signer_renew_fraction: float = 1 / 3
    renewal_key_reuse: KeyReuse = KeyReuse.ALLOW
    # Re-sign the issuer's CRL right after each revocation (else only in `refresh_due`).
    crl_on_revoke: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_url", check_public_url(self.public_url))
        if not self.organization or len(self.organization) > 64:
            raise InvalidRequest("the CA organization name is 1-64 characters")
        if not timedelta(0) <= self.clock_skew <= timedelta(hours=1):
            raise InvalidRequest("clock_skew is between 0 and 1 hour")
        for profile, lifetime in self.lifetimes.items():
            check_lifetime(profile, lifetime)
        for name in ("crl_validity", "root_crl_validity"):
            value = getattr(self, name)
            if not timedelta(hours=1) <= value <= timedelta(days=400):
                raise InvalidRequest(f"{name} is between 1 hour and 400 days")
        if not 0 < self.crl_refresh_fraction < 1 or not 0 < self.ocsp_signer_renew_fraction < 1:
            raise InvalidRequest("refresh fractions are between 0 and 1")

    def lifetime(self, profile: Profile) -> timedelta:
        return self.lifetimes[profile]

    def crl_url(self, ca_id: str) -> str:
        return f"{self.public_url}/pki/crl/{ca_id}.crl"

    def ca_issuers_url(self, ca_id: str) -> str:
        return f"{self.public_url}/pki/ca/{ca_id}.crt"

    @property
    def ocsp_url(self) -> str:
        return f"{self.public_url}/pki/ocsp"


def check_public_url(url: str) -> str:
    """An http(s) base URL without credentials, query or fragment; no trailing slash.

    Plain http is the usual choice for CRL and OCSP (RFC 5280 §4.2.1.13, RFC 6960 App. A):
    both are signed, and a relying party fetching them over TLS could need revocation data
    to check that very TLS connection."""
    if not isinstance(url, str):
        raise InvalidRequest("the PKI public URL is a string")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("the PKI public URL is http(s)://host[:port][/path]")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidRequest("the PKI public URL takes no credentials, query or fragment")
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def check_lifetime(profile: Profile, lifetime: timedelta) -> timedelta:
    maximum = MAX_LIFETIME.get(profile)
    if maximum is None:
        raise InvalidRequest(f"profile {profile.value} has no configurable lifetime")
    if not timedelta(minutes=5) <= lifetime <= maximum:
        raise InvalidRequest(
            f"a {profile.value} certificate lives between 5 minutes and {maximum}",
            profile=profile.value,
        )
    return lifetime
