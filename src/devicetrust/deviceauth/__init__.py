"""Device authentication: one service every entry point uses to judge a device.

    auth = DeviceAuthService(db, clock, vault, cert_verifier=device_verifier(pki, clock))
    device = auth.authenticate_certificate(der_chain, entry_point="mqtt")     # mTLS
    device = auth.authenticate_hmac_token(token, resource="mqtt.example.com")  # SAS-like
    device = auth.authenticate_jwt(token, audience="mqtt.example.com")         # ES256/EdDSA
    shown = auth.token_keys.rotate(physical_id, actor="operator:alice")        # key versions
    auth.public_keys.register(physical_id, pem, actor="operator:alice")        # JWT keys

Refusals are `AuthRefused` (401 `CredentialRefused`, 403 `DeviceForbidden`) with stable
`auth.*` codes; every refusal is audited. Session keys and the forward-secrecy ratchet live
in `session_keys`; the device side of the HMAC token in `hmac_format.encode_token`.

Never identifies a device by anything but its proven credential, and never stores, logs or
audits a key, MAC, signature or token.
"""

from devicetrust.deviceauth.errors import (
    PUBLIC_MESSAGE,
    AlgorithmRefused,
    AuthRateLimited,
    AuthRefused,
    CertificateNotAccepted,
    CredentialRefused,
    DeviceForbidden,
    DeviceKeyExists,
    DeviceKeyNotFound,
    IdentityStale,
    InvalidDeviceKey,
    InvalidLimits,
    KeyRetired,
    KeyRevoked,
    KeyUnknown,
    MethodNotAllowed,
    NetworkNotAllowed,
    NonceRequired,
    TokenExpired,
    TokenInvalid,
    TokenLifetimeExceeded,
    TokenMalformed,
    TokenNotYetValid,
    TokenReplayed,
    TokenWrongAudience,
    TokenWrongSubject,
    UnitDecommissioned,
    UnitQuarantined,
    UnitSuspended,
    UnitUnknown,
)
from devicetrust.deviceauth.hmac_format import decode_token, encode_token, new_nonce
from devicetrust.deviceauth.mtls_auth import ChainVerifier
from devicetrust.deviceauth.public_keys import DevicePublicKeys, key_id_of
from devicetrust.deviceauth.records import (
    DEFAULT_LIMITS,
    AuthenticatedDevice,
    AuthLimits,
    AuthMethod,
    DevicePublicKey,
    JwtAlgorithm,
    LimitsFor,
    TokenKeyOrigin,
    TokenKeyShown,
    TokenKeyVersion,
    default_limits,
)
from devicetrust.deviceauth.service import REFUSAL_ACTION, DeviceAuthService
from devicetrust.deviceauth.session_keys import (
    SessionKeyRatchet,
    derive_session_key,
    hkdf_sha256,
)
from devicetrust.deviceauth.token_keys import TokenKeys
from devicetrust.deviceauth.trust import device_verifier

__all__ = [
    "DEFAULT_LIMITS",
    "PUBLIC_MESSAGE",
    "REFUSAL_ACTION",
    "AlgorithmRefused",
    "AuthLimits",
    "AuthMethod",
    "AuthRateLimited",
    "AuthRefused",
    "AuthenticatedDevice",
    "CertificateNotAccepted",
    "ChainVerifier",
    "CredentialRefused",
    "DeviceAuthService",
    "DeviceForbidden",
    "DeviceKeyExists",
    "DeviceKeyNotFound",
    "DevicePublicKey",
    "DevicePublicKeys",
    "IdentityStale",
    "InvalidDeviceKey",
    "InvalidLimits",
    "JwtAlgorithm",
    "KeyRetired",
    "KeyRevoked",
    "KeyUnknown",
    "LimitsFor",
    "MethodNotAllowed",
    "NetworkNotAllowed",
    "NonceRequired",
    "SessionKeyRatchet",
    "TokenExpired",
    "TokenInvalid",
    "TokenKeyOrigin",
    "TokenKeyShown",
    "TokenKeyVersion",
    "TokenKeys",
    "TokenLifetimeExceeded",
    "TokenMalformed",
    "TokenNotYetValid",
    "TokenReplayed",
    "TokenWrongAudience",
    "TokenWrongSubject",
    "UnitDecommissioned",
    "UnitQuarantined",
    "UnitSuspended",
    "UnitUnknown",
    "decode_token",
    "default_limits",
    "derive_session_key",
    "device_verifier",
    "encode_token",
    "hkdf_sha256",
    "key_id_of",
    "new_nonce",
]
