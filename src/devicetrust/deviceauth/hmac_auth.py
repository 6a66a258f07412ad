"""Authentication by HMAC identifier token (`hmac_format`), in the order of `rules`:

1. the token parses                                                 auth.token_malformed
2. the unit has that key version, not revoked, not retired          auth.key_unknown /
                                                                    _revoked / _retired
3. the MAC matches, in constant time                                auth.token_invalid
4. it is for the resource the entry point serves                    auth.token_wrong_audience
5. the unit's limits allow hmac-token (and a nonce if required)     auth.method_not_allowed /
                                                                    auth.nonce_required
6. not expired beyond the skew, not valid for longer than allowed   auth.token_expired /
                                                                    _lifetime_exceeded
7. the unit's state admits it                                       auth.unit_*
8. a nonce is spent once                                            auth.token_replayed

The key version, the unit's state and its logical identity come from one query (cached for
`cache_ttl` when the service is given one, see `_cache`). The clear key lives in a
`bytearray` zeroed right after the MAC. Unknown units and versions still cost a MAC
computation (with a random decoy key) but skip the unseal (~7 us), so response timing may
tell whether a key version exists: that is not secret (ids and versions are no credential),
and the device is told the same message either way.

Never logs, audits or puts into an error a key, a MAC or the token.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select

from devicetrust.deviceauth import rules
from devicetrust.deviceauth._cache import TtlCache
from devicetrust.deviceauth._read_once import read_once
from devicetrust.deviceauth._unit import (
    STANDING_COLUMNS,
    UnitStanding,
    standing_limits,
    with_standing,
)
from devicetrust.deviceauth.errors import (
    KeyRetired,
    KeyRevoked,
    KeyUnknown,
    NonceRequired,
    TokenInvalid,
    TokenMalformed,
    TokenWrongAudience,
)
from devicetrust.deviceauth.hmac_format import decode_token, mac_matches
from devicetrust.deviceauth.records import (
    AuthenticatedDevice,
    AuthMethod,
    LimitsFor,
    TokenKeyOrigin,
    TokenKeyVersion,
)
from devicetrust.deviceauth.replay import ReplayLedger
from devicetrust.deviceauth.token_keys import TokenKeys
from devicetrust.domain.clock import Clock
from devicetrust.domain.ids import PhysicalId
from devicetrust.provisioning.enrollments import zero
from devicetrust.store.database import Database
from devicetrust.store.models import PhysicalIdentityRow
from devicetrust.store.models_device_auth import DeviceTokenKeyRow

_KEY_AND_UNIT = with_standing(
    select(
        DeviceTokenKeyRow.origin,
        DeviceTokenKeyRow.sealed_key,
        DeviceTokenKeyRow.created_at,
        DeviceTokenKeyRow.retires_at,
        DeviceTokenKeyRow.revoked_at,
        *STANDING_COLUMNS,
    ).join(PhysicalIdentityRow, PhysicalIdentityRow.id == DeviceTokenKeyRow.physical_id)
).where(
    DeviceTokenKeyRow.physical_id == bindparam("pid"),
    DeviceTokenKeyRow.version == bindparam("version"),
)


@dataclass(frozen=True, slots=True)
class _KeyEntry:
    version: TokenKeyVersion
    sealed_key: bytes | None = field(repr=False)
    unit: UnitStanding


class HmacTokenAuthenticator:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        keys: TokenKeys,
        limits_for: LimitsFor,
        replay: ReplayLedger,
        *,
        cache_ttl: timedelta = timedelta(0),
    ) -> None:
        self._db = db
        self._clock = clock
        self._keys = keys
        self._limits_for = standing_limits(limits_for)
        self._replay = replay
        self._cache: TtlCache[tuple[str, int], _KeyEntry] = TtlCache(clock, cache_ttl)
        self._decoy = bytearray(secrets.token_bytes(32))

    def clear_cache(self) -> None:
        self._cache.clear()

    def authenticate(
        self, token: object, *, resource: str, spend: bool = True, source: str | None = None
    ) -> AuthenticatedDevice:
        """`spend=False` (a dry run) refuses a spent nonce but records nothing. `source`:
        the peer's address, checked against the unit's networks once the token is spent."""
        parsed = decode_token(token)
        now = self._clock.now()
        pid, number = parsed.physical_id, parsed.key_version
        entry = self._cache.get((pid, number), lambda: self._load(pid, number))
        if entry is None:
            mac_matches(self._decoy, parsed.signed, parsed.mac)  # same work as a wrong MAC
            raise KeyUnknown("the unit has no token key of that version", version=number)
        if entry.version.revoked_at is not None:
            raise KeyRevoked("that token key version was revoked", version=number)
        if not entry.version.accepted_at(now):
            raise KeyRetired("that token key version was rotated out", version=number)
        key = self._keys.open_key(pid, number, entry.sealed_key)
        try:
            matches = mac_matches(key, parsed.signed, parsed.mac)
        finally:
            zero(key)
        if not matches:
            raise TokenInvalid("the token's MAC does not verify", version=number)
        if not hmac.compare_digest(parsed.resource.encode(), resource.encode()):
            raise TokenWrongAudience("the token is for another resource", resource=parsed.resource)
        limits = self._limits_for(entry.unit)
        rules.check_method(limits, AuthMethod.HMAC_TOKEN)
        if limits.require_nonce and parsed.nonce is None:
            raise NonceRequired("the unit's tokens must carry a nonce")
        try:
            expires = datetime.fromtimestamp(parsed.expires, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise TokenMalformed("the token's expiry is not a usable time") from exc
        rules.check_token_time(now, limits, expires=expires)
        rules.check_unit_state(entry.unit.state)
        if parsed.nonce is not None and not spend:
            self._replay.check_unspent(pid, AuthMethod.HMAC_TOKEN, parsed.nonce)
        elif parsed.nonce is not None:
            self._replay.spend(
                pid,
                AuthMethod.HMAC_TOKEN,
                parsed.nonce,
                at=now,
                until=rules.replay_horizon(expires, limits),
            )
        if source is not None:
            rules.check_source(limits, source)
        return AuthenticatedDevice(
            physical_id=entry.unit.physical_id,
            logical_name=entry.unit.logical_name,
            method=AuthMethod.HMAC_TOKEN,
            credential_id=str(number),
            expires_at=expires,
            authenticated_at=now,
        )

    def _load(self, physical_id: str, number: int) -> _KeyEntry | None:
        found = read_once(self._db, _KEY_AND_UNIT, {"pid": physical_id, "version": number})
        if found is None:
            return None
        origin, sealed, created_at, retires_at, revoked_at, *standing = found
        version = TokenKeyVersion(
            physical_id=PhysicalId(physical_id),
            version=number,
            origin=TokenKeyOrigin(origin),
            created_at=created_at,
            retires_at=retires_at,
            revoked_at=revoked_at,
            destroyed=sealed is None,
        )
        unit = UnitStanding.from_columns(physical_id, standing)
        return _KeyEntry(version, sealed, unit)
