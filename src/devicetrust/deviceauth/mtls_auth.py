"""Authentication by client certificate (mutual TLS): the presented chain goes through the
CA's `DeviceCertVerifier` (path, time, EKU, revocation: see `pki.verify`), then, in the
order of `rules`:

1-3. the chain verifies                        auth.cert_* (the verifier's precise code)
4.   the unit exists                           auth.unit_unknown
5.   the unit's limits allow mtls              auth.method_not_allowed
7.   the unit's state admits it                auth.unit_*
8.   a logical name the certificate carries is the one the unit holds now (or a former
     name of it)                               auth.identity_stale
10.  the source address is inside the unit's allowed networks   auth.network_not_allowed

What can change is read anew at every authentication, in one statement (`_read_once.
RowReader`): the status of each certificate of the chain below its anchor, the unit's state,
the identity it holds, and what its policy limits are kept under (`_unit`,
`policy_limits`). A revoked or held certificate, a suspended, quarantined, replaced or
decommissioned unit is refused at its next authentication, whichever process made the
change. What cannot change is kept: the verified path of a presented chain (steps 1-5 of
`pki.verify`, by the SHA-256 of what was presented), reused while every certificate of the
path is within its validity, with the parameters of its status columns; at most
`MAX_KEPT_PATHS`, the oldest dropped first.

The identity is the certificate's, never an id the client chose (an MQTT client id, a
header): entry points pass only the chain. The logical name returned is the registry's.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509
from sqlalchemy import Select, bindparam, literal, select

from devicetrust.deviceauth import rules
from devicetrust.deviceauth._read_once import RowReader
from devicetrust.deviceauth._unit import (
    STANDING_COLUMNS,
    UnitStanding,
    check_claimed_name,
    standing_limits,
    with_standing,
)
from devicetrust.deviceauth.errors import CertificateNotAccepted, UnitUnknown
from devicetrust.deviceauth.records import AuthenticatedDevice, AuthMethod, LimitsFor
from devicetrust.domain.clock import Clock
from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.pki.serials import serial_text
from devicetrust.pki.status_store import issuer_key, status_column, status_from, status_params
from devicetrust.pki.verify import (
    MAX_PRESENTED_CERTIFICATES,
    CertificateRefused,
    VerifiedPath,
    check_statuses,
)
from devicetrust.store.database import Database
from devicetrust.store.models import PhysicalIdentityRow

CLAIMED_ID_PREFIX = "urn:uuid:"
MAX_KEPT_PATHS = 50_000  # verified paths kept (about a kilobyte each)


class ChainVerifier(Protocol):
    """What this authenticator needs of `pki.verify.DeviceCertVerifier`."""

    def path_der(self, chain: Sequence[bytes]) -> VerifiedPath: ...

    def path_pem(self, pem: bytes) -> VerifiedPath: ...


def claimed_physical_id(chain: Sequence[bytes] | bytes) -> str | None:
    """For the audit of a refusal only: the physical id a presented leaf names, unverified
    and truncated; None when it names none readable."""
    try:
        if isinstance(chain, bytes):
            leaf = x509.load_pem_x509_certificates(chain)[0]
        else:
            leaf = x509.load_der_x509_certificate(chain[0])
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, IndexError, x509.ExtensionNotFound, x509.InvalidVersion):
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.lower().startswith(CLAIMED_ID_PREFIX):
            return uri[len(CLAIMED_ID_PREFIX) :][:64]
    return None


def _statement(statuses: int) -> Select[*tuple[Any, ...]]:
    """The statuses of `statuses` certificates, then the unit's standing: one row even for
    a unit the registry does not know (its standing columns are then NULL)."""
    one = select(literal(1).label("one")).subquery()
    columns: list[Any] = [status_column(position) for position in range(statuses)]
    base: Select[*tuple[Any, ...]] = select(*columns, *STANDING_COLUMNS)
    return with_standing(
        base.select_from(one).outerjoin(
            PhysicalIdentityRow, PhysicalIdentityRow.id == bindparam("pid")
        )
    )


# A built path is at most 8 certificates deep (cryptography's default), so at most 7 below
# its anchor; built once per length.
_STATEMENTS = {count: _statement(count) for count in range(1, MAX_PRESENTED_CERTIFICATES)}


@dataclass(frozen=True, slots=True)
class _KnownPath:
    """What authentication keeps of a verified path: no certificate object (a parsed leaf
    with its decoded extensions is several kilobytes), only what it reads again."""

    physical_id: PhysicalId
    logical_name: LogicalName | None
    credential_id: str  # the leaf's serial, as `AuthenticatedDevice` names it
    not_after: datetime
    valid_from: datetime
    valid_until: datetime
    serials: tuple[int, ...]  # of the certificates below the anchor, leaf first
    params: dict[str, str]  # the statement's, but the unit's id


class CertificateAuthenticator:
    def __init__(
        self, db: Database, clock: Clock, verifier: ChainVerifier, limits_for: LimitsFor
    ) -> None:
        self._db = db
        self._clock = clock
        self._verifier = verifier
        self._limits_for = standing_limits(limits_for)
        self._paths: dict[bytes, _KnownPath] = {}
        self._lock = threading.Lock()
        self._readers = {count: RowReader(db, stmt) for count, stmt in _STATEMENTS.items()}
        self._issuer_keys: dict[x509.Certificate, str] = {}

    def clear_cache(self) -> None:
        """Forget the verified paths (they depend on nothing that changes, but a caller
        asking to forget everything gets that)."""
        with self._lock:
            self._paths.clear()

    def authenticate(
        self, chain: Sequence[bytes] | bytes, *, source: str | None = None
    ) -> AuthenticatedDevice:
        """`chain`: DER certificates leaf first (as a TLS stack hands them over), or one
        PEM blob. `source`: the peer's address, checked against the unit's networks."""
        now = self._clock.now()
        known = self._known(chain, now)
        count = len(known.serials)
        row = self._readers[count].first({**known.params, "pid": known.physical_id})
        assert row is not None  # the statement always returns its one row
        statuses = [
            status_from(serial, answer)
            for serial, answer in zip(known.serials, row[:count], strict=True)
        ]
        try:
            check_statuses(known.serials, statuses)
        except CertificateRefused as exc:
            raise CertificateNotAccepted(exc.code, exc.message, **exc.details) from exc
        standing = row[count:]
        if standing[0] is None:  # no unit row: its state is NOT NULL
            raise UnitUnknown(
                "the certificate names no registered unit", serial=known.credential_id
            )
        unit = UnitStanding.from_columns(known.physical_id, standing)
        limits = self._limits_for(unit)
        rules.check_method(limits, AuthMethod.MTLS)
        rules.check_unit_state(unit.state)
        if known.logical_name is not None and known.logical_name != unit.logical_name:
            with self._db.read() as session:
                check_claimed_name(session, unit, known.logical_name)
        if source is not None:
            rules.check_source(limits, source)
        return AuthenticatedDevice(
            physical_id=unit.physical_id,
            logical_name=unit.logical_name,
            method=AuthMethod.MTLS,
            credential_id=known.credential_id,
            expires_at=known.not_after,
            authenticated_at=now,
        )

    def _known(self, chain: Sequence[bytes] | bytes, now: datetime) -> _KnownPath:
        """The verified path of the presented chain: kept, or verified now (steps 1-5).
        Kept by everything presented (DER certificates are self-delimiting), so a chain the
        verifier would refuse for a part it ignores (a malformed or extra certificate) is
        never answered from what a good one left."""
        key = hashlib.sha256(chain if isinstance(chain, bytes) else b"".join(chain)).digest()
        found = self._paths.get(key)
        if found is not None and found.valid_from <= now <= found.valid_until:
            return found
        try:
            path = (
                self._verifier.path_pem(chain)
                if isinstance(chain, bytes)
                else self._verifier.path_der(chain)
            )
        except CertificateRefused as exc:
            raise CertificateNotAccepted(exc.code, exc.message, **exc.details) from exc
        pairs = path.status_pairs()
        params: dict[str, str] = {}
        for position, (cert, issuer) in enumerate(pairs):
            params.update(status_params(position, self._issuer_key(issuer), cert.serial_number))
        leaf = path.chain[0]
        known = _KnownPath(
            physical_id=path.physical_id,
            logical_name=path.logical_name,
            credential_id=serial_text(leaf.serial_number),
            not_after=leaf.not_valid_after_utc,
            valid_from=path.valid_from,
            valid_until=path.valid_until,
            serials=tuple(cert.serial_number for cert, _ in pairs),
            params=params,
        )
        with self._lock:
            if len(self._paths) >= MAX_KEPT_PATHS:
                self._paths.pop(next(iter(self._paths)))  # the oldest
            self._paths[key] = known
        return known

    def _issuer_key(self, issuer: x509.Certificate) -> str:
        """A CA's key hash, computed once per CA (the path's CA objects are the verifier's
        own, so kept paths share one string)."""
        key = self._issuer_keys.get(issuer)
        if key is None:
            key = self._issuer_keys.setdefault(issuer, issuer_key(issuer))
        return key
