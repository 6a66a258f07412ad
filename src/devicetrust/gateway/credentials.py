"""Which credential a connecting device presented, and how a refusal maps to a reason code.

The convention (docs/gateway.md):

1. a client certificate in the TLS handshake is the credential (mTLS); the CONNECT user name
   and password are then ignored;
2. otherwise the CONNECT user name names the method and the password holds the token:
   `hmac-token` + an HMAC identifier token, or `jwt` + a device JWT;
3. nothing presented: 0x87 Not authorized; an unknown method, a token that is not ASCII, or
   a token method while the gateway accepts no tokens: 0x86 Bad user name or password.

Authentication itself (`authenticate`) is the device-auth service's synchronous database
work, run in a worker thread so the event loop never waits on it. The device is told only
the reason code: 0x86 when a token did not prove an identity, 0x87 when a certificate did
not, or when the credential was good but the unit may not connect (suspended, ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from devicetrust.deviceauth import (
    AuthenticatedDevice,
    AuthMethod,
    AuthRateLimited,
    AuthRefused,
    DeviceForbidden,
)

from .codec import Connect, ReasonCode

ENTRY_POINT = "mqtt"
USERNAME_FOR_METHOD = {AuthMethod.HMAC_TOKEN.value: AuthMethod.HMAC_TOKEN,
                       AuthMethod.JWT.value: AuthMethod.JWT}
MAX_TOKEN_BYTES = 8192


class DeviceAuthenticator(Protocol):
    """What the gateway needs of `deviceauth.DeviceAuthService`."""

    def authenticate_certificate(self, chain: Sequence[bytes] | bytes, *,
                                 entry_point: str = ...,
                                 source: str | None = ...) -> AuthenticatedDevice: ...

    def authenticate_hmac_token(self, token: object, *, resource: str,
                                entry_point: str = ...,
                                source: str | None = ...) -> AuthenticatedDevice: ...

    def authenticate_jwt(self, token: object, *, audience: str,
                         entry_point: str = ...,
                         source: str | None = ...) -> AuthenticatedDevice: ...


@dataclass(frozen=True, slots=True)
class Presented:
    method: AuthMethod
    certificate: bytes | None = None  # leaf DER (mTLS)
    token: str | None = None  # HMAC token or JWT
    source: str | None = None  # the peer's IP address: the policy's allowed networks


def select_credential(connect: Connect, peer_certificate: bytes | None,
                      token_audience: str | None,
                      source: str | None = None) -> Presented | ReasonCode:
    """The credential to authenticate (with the peer's address `source`, checked against the
    unit's allowed networks once it is proven), or the reason code refusing the CONNECT."""
    if peer_certificate:
        return Presented(AuthMethod.MTLS, certificate=peer_certificate, source=source)
    if connect.password is None:
        return ReasonCode.NOT_AUTHORIZED
    method = USERNAME_FOR_METHOD.get(connect.username or "")
    if method is None or token_audience is None or len(connect.password) > MAX_TOKEN_BYTES:
        return ReasonCode.BAD_USER_NAME_OR_PASSWORD
    try:
        token = connect.password.decode("ascii")
    except UnicodeDecodeError:
        return ReasonCode.BAD_USER_NAME_OR_PASSWORD
    return Presented(method, token=token, source=source)


def refusal_code(presented: Presented, refused: AuthRefused) -> ReasonCode:
    if isinstance(refused, AuthRateLimited):  # too many failures from this source address
        return ReasonCode.CONNECTION_RATE_EXCEEDED  # 3.1.1: return code 3
    if isinstance(refused, DeviceForbidden) or presented.method is AuthMethod.MTLS:
        return ReasonCode.NOT_AUTHORIZED
    return ReasonCode.BAD_USER_NAME_OR_PASSWORD


def _authenticate(auth: DeviceAuthenticator, presented: Presented,
                  audience: str | None) -> AuthenticatedDevice:
    if presented.method is AuthMethod.MTLS:
        assert presented.certificate is not None
        return auth.authenticate_certificate([presented.certificate], entry_point=ENTRY_POINT,
                                             source=presented.source)
    assert audience is not None  # select_credential refuses tokens without an audience
    if presented.method is AuthMethod.HMAC_TOKEN:
        return auth.authenticate_hmac_token(presented.token, resource=audience,
                                            entry_point=ENTRY_POINT, source=presented.source)
    return auth.authenticate_jwt(presented.token, audience=audience, entry_point=ENTRY_POINT,
                                 source=presented.source)


async def authenticate(auth: DeviceAuthenticator, presented: Presented, audience: str | None,
                       limit: asyncio.Semaphore) -> AuthenticatedDevice:
    """Authenticate in a worker thread; raises `AuthRefused`."""
    async with limit:
        return await asyncio.to_thread(_authenticate, auth, presented, audience)
