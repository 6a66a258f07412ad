"""Reading a device certificate's identity: the physical id and logical name it names.

A device certificate (issue 3, device operational and birth profiles) carries
`CN=<physical id>`, `SAN URI:urn:uuid:<physical id>` (RFC 4122 §3 URN form) and, once bound,
`SAN URI:urn:devicetrust:logical:<name>`. This module is pure: it reads what the certificate
says and refuses anything ambiguous.

Never returns an identity from a certificate that names none, two, or a non-canonical one:
exactly one `urn:uuid:` URI holding a canonical (lowercase, hyphenated) UUIDv4, at most one
logical-name URI with a valid name, and exactly one CN equal to the physical id. Never decides
trust: the caller maps identities only from a chain it has verified.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from devicetrust.domain.errors import InvalidInput
from devicetrust.domain.ids import LogicalName, PhysicalId, parse_logical_name, parse_physical_id
from devicetrust.pki._cert_refusals import CertMalformed, CertNoIdentity

PHYSICAL_URI_PREFIX = "urn:uuid:"
LOGICAL_URI_PREFIX = "urn:devicetrust:logical:"


def device_identity(leaf: x509.Certificate) -> tuple[PhysicalId, LogicalName | None]:
    """The (physical id, logical name or None) a device certificate names."""
    serial = f"{leaf.serial_number:x}"
    uris = _san_uris(leaf, serial)
    physical = [u for u in uris if u.lower().startswith(PHYSICAL_URI_PREFIX)]
    if len(physical) != 1:
        raise CertNoIdentity(
            f"a device certificate names exactly one physical id, this one {len(physical)}",
            serial=serial,
            physical_uris=len(physical),
        )
    physical_id = _physical_id(physical[0], serial)
    logical = [u for u in uris if u.lower().startswith(LOGICAL_URI_PREFIX)]
    if len(logical) > 1:
        raise CertNoIdentity("a device certificate names at most one logical name", serial=serial)
    logical_name = _logical_name(logical[0], serial) if logical else None
    common_names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(common_names) != 1 or common_names[0].value != physical_id:
        raise CertNoIdentity(
            "the certificate's CN is not its physical id", serial=serial, physical_id=physical_id
        )
    return physical_id, logical_name


def _san_uris(leaf: x509.Certificate, serial: str) -> list[str]:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise CertNoIdentity(
            "the certificate has no subjectAltName, so no physical id", serial=serial
        ) from exc
    except ValueError as exc:  # duplicate or undecodable extensions
        raise CertMalformed("the certificate's extensions do not parse", serial=serial) from exc
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def _physical_id(uri: str, serial: str) -> PhysicalId:
    try:
        physical_id = parse_physical_id(uri[len(PHYSICAL_URI_PREFIX) :])
    except InvalidInput as exc:
        raise CertNoIdentity(
            "the certificate's urn:uuid is not a UUIDv4", serial=serial, uri=uri[:64]
        ) from exc
    # parse_physical_id forgives case and blanks; a certificate we issued has neither.
    if uri != PHYSICAL_URI_PREFIX + physical_id:
        raise CertNoIdentity(
            "the certificate's urn:uuid is not in canonical form", serial=serial, uri=uri[:64]
        )
    return physical_id


def _logical_name(uri: str, serial: str) -> LogicalName:
    if not uri.startswith(LOGICAL_URI_PREFIX):
        raise CertNoIdentity("the logical-name URI is not in canonical form", serial=serial)
    try:
        return parse_logical_name(uri[len(LOGICAL_URI_PREFIX) :])
    except InvalidInput as exc:
        raise CertNoIdentity(
            "the certificate's logical name is not valid", serial=serial, uri=uri[:160]
        ) from exc
