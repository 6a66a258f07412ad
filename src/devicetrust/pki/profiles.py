"""Certificate profiles: what each kind of certificate contains, as pure functions that turn
decided values (names, key, serial, validity, URLs) into a `cryptography` builder.

Owns the extension set of every profile (RFC 5280 §4.2) and the names of device
certificates. Never reads names from a CSR (the caller passes names taken from the registry
or the operator), never signs, and never builds a CA certificate from a request.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.pki.errors import InvalidRequest
from devicetrust.pki.records import CaRole, Profile

LOGICAL_URN_PREFIX = "urn:devicetrust:logical:"
MAX_SERVER_NAMES = 32
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True, slots=True)
class ProfileRule:
    profile: Profile
    issuer_role: CaRole
    extended_key_usage: tuple[x509.ObjectIdentifier, ...]
    needs_unit: bool  # subject is a registered physical unit
    unit_states: frozenset[DeviceState]  # states in which such a unit may get one
    carries_logical_name: bool
    renewable: bool


_OPERATIONAL_STATES = frozenset(
    {DeviceState.MANUFACTURED, DeviceState.PROVISIONED, DeviceState.ACTIVE}
)
# A birth certificate proves where a unit came from; it is issued at the factory and on the
# line, never to a unit already in service.
_BIRTH_STATES = frozenset({DeviceState.MANUFACTURED, DeviceState.PROVISIONED})

RULES: dict[Profile, ProfileRule] = {
    Profile.DEVICE: ProfileRule(
        Profile.DEVICE,
        CaRole.ISSUING,
        (ExtendedKeyUsageOID.CLIENT_AUTH,),
        needs_unit=True,
        unit_states=_OPERATIONAL_STATES,
        carries_logical_name=True,
        renewable=True,
    ),
    Profile.BIRTH: ProfileRule(
        Profile.BIRTH,
        CaRole.MANUFACTURING,
        (ExtendedKeyUsageOID.CLIENT_AUTH,),
        needs_unit=True,
        unit_states=_BIRTH_STATES,
        carries_logical_name=False,
        renewable=False,
    ),
    Profile.SERVER: ProfileRule(
        Profile.SERVER,
        CaRole.ISSUING,
        (ExtendedKeyUsageOID.SERVER_AUTH,),
        needs_unit=False,
        unit_states=frozenset(),
        carries_logical_name=False,
        renewable=True,
    ),
    Profile.OCSP_SIGNER: ProfileRule(
        Profile.OCSP_SIGNER,
        CaRole.ISSUING,
        (ExtendedKeyUsageOID.OCSP_SIGNING,),
        needs_unit=False,
        unit_states=frozenset(),
        carries_logical_name=False,
        renewable=False,
    ),
}


def rule_for(profile: Profile | str) -> ProfileRule:
    try:
        rule = RULES.get(Profile(profile))
    except ValueError:
        rule = None
    if rule is None:
        known = ", ".join(p.value for p in RULES)
        raise InvalidRequest(f"unknown certificate profile {str(profile)[:32]!r}; use {known}")
    return rule


# ---- names ---------------------------------------------------------------------------------


def device_subject(physical_id: PhysicalId) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, physical_id)])


def device_alt_names(
    physical_id: PhysicalId, logical_name: LogicalName | None
) -> list[x509.GeneralName]:
    """`urn:uuid:<physical id>` (RFC 9562 §4 URN form) and, when bound, the logical name."""
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(f"urn:uuid:{physical_id}")]
    if logical_name is not None:
        names.append(x509.UniformResourceIdentifier(f"{LOGICAL_URN_PREFIX}{logical_name}"))
    return names


def server_alt_names(
    dns_names: Sequence[str], ip_addresses: Sequence[str]
) -> list[x509.GeneralName]:
    """Operator-given DNS names (no wildcards) and IP addresses, checked and de-duplicated."""
    if isinstance(dns_names, str) or isinstance(ip_addresses, str):
        raise InvalidRequest("dns_names and ip_addresses are lists")
    names: list[x509.GeneralName] = []
    for raw in dns_names:
        name = _check_dns_name(raw)
        if x509.DNSName(name) not in names:
            names.append(x509.DNSName(name))
    for raw in ip_addresses:
        try:
            address = ipaddress.ip_address(str(raw).strip())
        except ValueError as exc:
            raise InvalidRequest(f"not an IP address: {str(raw)[:64]!r}") from exc
        if x509.IPAddress(address) not in names:
            names.append(x509.IPAddress(address))
    if not names:
        raise InvalidRequest("a server certificate needs at least one DNS name or IP address")
    if len(names) > MAX_SERVER_NAMES:
        raise InvalidRequest(f"at most {MAX_SERVER_NAMES} names in a server certificate")
    return names


def server_subject(alt_names: Sequence[x509.GeneralName]) -> x509.Name:
    first = alt_names[0]
    value = first.value if isinstance(first, x509.DNSName) else str(first.value)
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value[:64])])


def _check_dns_name(raw: str) -> str:
    name = str(raw).strip().lower().rstrip(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        # Wildcards are refused too: a leaked wildcard key would impersonate every host.
        raise InvalidRequest(f"not a DNS host name (no wildcards): {str(raw)[:64]!r}")
    return name


def ca_subject(organization: str, title: str, ca_id: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organization} {title} {ca_id[:8]}"),
        ]
    )


def ocsp_signer_subject(issuer: x509.Certificate, signer_id: str) -> x509.Name:
    cns = issuer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    issuer_cn = str(cns[0].value) if cns else "CA"
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"OCSP {issuer_cn}"[:56] + f" {signer_id[:6]}")]
    )


# ---- builders ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Validity:
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True, slots=True)
class IssuerUrls:
    """Where relying parties fetch the issuer's CRL and certificate, and ask OCSP."""

    crl: str
    ca_issuers: str
    ocsp: str | None


def _key_usage(*, sign: bool, encipher: bool = False, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=encipher,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@functools.lru_cache(maxsize=64)
def authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """From the issuer's SKI when it has one (RFC 5280 §4.2.1.1), else from its key.
    Memoised by certificate (compared by its DER): the same few CAs sign everything."""
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _base(
    subject: x509.Name,
    issuer_name: x509.Name,
    public_key: CertificatePublicKeyTypes,
    serial: int,
    validity: Validity,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(validity.not_before)
        .not_valid_after(validity.not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _distribution(builder: x509.CertificateBuilder, urls: IssuerUrls) -> x509.CertificateBuilder:
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(urls.ca_issuers),
        )
    ]
    if urls.ocsp is not None:
        access.insert(
            0,
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(urls.ocsp)
            ),
        )
    crl_point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(urls.crl)],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    return builder.add_extension(
        x509.AuthorityInformationAccess(access), critical=False
    ).add_extension(x509.CRLDistributionPoints([crl_point]), critical=False)


def leaf_builder(
    rule: ProfileRule,
    *,
    subject: x509.Name,
    alt_names: Sequence[x509.GeneralName],
    public_key: CertificatePublicKeyTypes,
    serial: int,
    validity: Validity,
    issuer: x509.Certificate,
    urls: IssuerUrls,
) -> x509.CertificateBuilder:
    """An end-entity certificate: CA:FALSE, key usage and EKU by profile, SAN, AKI, AIA, CDP."""
    # RSA keys in a TLS server may still be used for RSA key transport by TLS 1.2 clients.
    encipher = rule.profile is Profile.SERVER and isinstance(public_key, rsa.RSAPublicKey)
    builder = (
        _base(subject, issuer.subject, public_key, serial, validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign=True, encipher=encipher), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(rule.extended_key_usage)), critical=False)
        .add_extension(authority_key_id(issuer), critical=False)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    if rule.profile is Profile.OCSP_SIGNER:
        # RFC 6960 §4.2.2.2.1: relying parties do not check the responder's own status.
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
        urls = IssuerUrls(crl=urls.crl, ca_issuers=urls.ca_issuers, ocsp=None)
    return _distribution(builder, urls)


def ca_builder(
    *,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    serial: int,
    validity: Validity,
    path_length: int,
    issuer: x509.Certificate | None,
    urls: IssuerUrls | None,
) -> x509.CertificateBuilder:
    """A CA certificate: self-signed root when `issuer` is None, else an intermediate with the
    root's CRL and certificate URLs. pathLenConstraint bounds the hierarchy (RFC 5280
    §4.2.1.9): root 1, intermediates 0, so no certificate devicetrust issues can be a CA."""
    issuer_name = subject if issuer is None else issuer.subject
    builder = (
        _base(subject, issuer_name, public_key, serial, validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage(sign=False, ca=True), critical=True)
    )
    if issuer is None:
        return builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key),  # type: ignore[arg-type]
            critical=False,
        )
    builder = builder.add_extension(authority_key_id(issuer), critical=False)
    return _distribution(builder, urls) if urls is not None else builder
