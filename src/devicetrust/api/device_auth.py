"""Who is calling a device route: a unit proven by its own credential, through
`platform.device_auth` (the service every entry point shares), never by an id it states.

    @device_router.get("/me", dependencies=[allow_insecure(DEVICE_AUTH_REASON)])
    def me(device: DeviceDep) -> ...

The credential is taken in this order, and the first one present is the only one judged (a
refused credential is never followed by another):

1. the TLS client certificate of the connection (the ASGI `tls` extension `api.tls` fills in
   when `devicetrust serve` runs HTTPS with `tls_client_certs = "optional"`);
2. `Authorization: Bearer <JWT>` signed by the unit's key, `aud` = the public API URL
   (`api_audience`);
3. `Authorization: SharedAccessSignature <HMAC token>`, `sr` = the public API host
   (`api_resource`).

Never tells the device why it was refused: every refusal answers the same problem
(401 `auth.credential_refused`, 403 `auth.device_forbidden` once the credential was proven,
429 `auth.rate_limited` with Retry-After), with `AuthRefused.public_problem()`'s message. The
precise code goes to the audit log (the service writes it) and to the debug log. One 403 is
named: `auth.network_not_allowed`, a proven unit calling from outside its policy's
`allowed_networks` (the peer address is passed to the service as `source`).
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request

from devicetrust.api import problems
from devicetrust.api.platform import PlatformDep
from devicetrust.api.tls import client_certificate_chain
from devicetrust.deviceauth import (
    PUBLIC_MESSAGE,
    AuthenticatedDevice,
    AuthRateLimited,
    AuthRefused,
    CredentialRefused,
    DeviceAuthService,
    DeviceForbidden,
    NetworkNotAllowed,
)
from devicetrust.domain.errors import ConfigurationError, DeviceTrustError
from devicetrust.runtime.container import Platform
from devicetrust.runtime.settings import Settings

ENTRY_POINT = "api"
SAS_SCHEME = "SharedAccessSignature"
DEVICE_AUTH_REASON = (
    "devices hold no operator key: the route authenticates the unit itself by its TLS client "
    "certificate, a JWT signed with its key or an HMAC token (`api.device_auth`), through the "
    "device authentication service, which rate-limits and audits every refusal"
)
# RFC 9110 §11.6.1: a 401 names the schemes the client may use.
CHALLENGE = f'Bearer realm="devicetrust devices", {SAS_SCHEME} realm="devicetrust devices"'
MAX_CREDENTIAL = 4096
_log = logging.getLogger(__name__)


class DeviceNotAuthenticated(DeviceTrustError):
    """A device route's refusal as the device sees it: a status and the public message only
    (the precise `AuthRefused` is the `__cause__`, for the server's side)."""

    status = 401
    exit_code = 3

    def __init__(
        self,
        public_status: int,
        code: str,
        message: str = PUBLIC_MESSAGE,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(code, message)
        self.public_status = public_status
        self.retry_after = retry_after

    @classmethod
    def of(cls, refusal: AuthRefused) -> DeviceNotAuthenticated:
        status, message = refusal.public_problem()
        if isinstance(refusal, AuthRateLimited):
            return cls(status, AuthRateLimited.CODE, message, retry_after=refusal.retry_after)
        if isinstance(refusal, NetworkNotAllowed):  # proven unit: the reason is no oracle
            return cls(status, NetworkNotAllowed.CODE, message)
        if isinstance(refusal, DeviceForbidden):
            return cls(status, DeviceForbidden.CODE, message)
        return cls(status, CredentialRefused.CODE, message)


def api_audience(settings: Settings) -> str:
    """The audience a device JWT names: `[server] public_url`, else the URL the server
    listens on (https when it has a certificate), without a trailing slash."""
    server = settings.server
    if server.public_url:
        return server.public_url.rstrip("/")
    scheme = "https" if server.tls_cert is not None else "http"
    return f"{scheme}://{server.host}:{server.port}"


def api_resource(settings: Settings) -> str:
    """The resource (`sr`) a device's HMAC token names for the API: the public API host."""
    return urlsplit(api_audience(settings)).hostname or settings.server.host


def _source(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def _mtls(platform: Platform, chain: bytes, source: str | None) -> AuthenticatedDevice:
    auth: DeviceAuthService = platform.device_auth
    try:
        return auth.authenticate_certificate(chain, entry_point=ENTRY_POINT, source=source)
    except ConfigurationError as exc:
        # The service was built before `ca init`: take the CA's trust material now.
        verifier = platform.device_cert_verifier()
        if exc.code != "deviceauth.no_trust_roots" or verifier is None:
            raise
        auth.use_cert_verifier(verifier)
        return auth.authenticate_certificate(chain, entry_point=ENTRY_POINT, source=source)


def _judge(request: Request, platform: Platform) -> AuthenticatedDevice:
    source = _source(request)
    chain = client_certificate_chain(request.scope)
    if chain:
        return _mtls(platform, "".join(chain).encode("ascii"), source)
    scheme, _, credential = request.headers.get("authorization", "").strip().partition(" ")
    credential = credential.strip()
    if not credential or len(credential) > MAX_CREDENTIAL:
        raise DeviceNotAuthenticated(401, CredentialRefused.CODE)
    auth = platform.device_auth
    if scheme.lower() == "bearer":
        audience = api_audience(platform.settings)
        return auth.authenticate_jwt(
            credential, audience=audience, entry_point=ENTRY_POINT, source=source
        )
    if scheme.lower() == SAS_SCHEME.lower():
        resource = api_resource(platform.settings)
        return auth.authenticate_hmac_token(
            credential, resource=resource, entry_point=ENTRY_POINT, source=source
        )
    raise DeviceNotAuthenticated(401, CredentialRefused.CODE)


def authenticated_device(request: Request, platform: PlatformDep) -> AuthenticatedDevice:
    """Dependency: the unit calling, or a `DeviceNotAuthenticated` (the generic answer)."""
    try:
        return _judge(request, platform)
    except AuthRefused as refusal:
        _log.debug("device refused on the API", extra={"code": refusal.code})
        raise DeviceNotAuthenticated.of(refusal) from refusal


DeviceDep = Annotated[AuthenticatedDevice, Depends(authenticated_device)]


async def _on_refusal(_request: Request, exc: Exception) -> problems.ProblemResponse:
    assert isinstance(exc, DeviceNotAuthenticated)
    headers: dict[str, str] = {}
    if exc.public_status == 401:
        headers["WWW-Authenticate"] = CHALLENGE
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return problems.problem(exc.public_status, exc.code, exc.message, headers=headers)


def install(app: FastAPI) -> None:
    """Answer device refusals with the generic problem (before the domain-error handler,
    which would show a `DeviceTrustError`'s own message)."""
    app.add_exception_handler(DeviceNotAuthenticated, _on_refusal)
