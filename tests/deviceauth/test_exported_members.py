"""The public surface of `devicetrust.deviceauth` is what `__all__` says."""

from __future__ import annotations

import devicetrust.deviceauth


def test_deviceauth_exports() -> None:
    assert sorted(devicetrust.deviceauth.__all__) == sorted(
        [
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
    )
    for name in devicetrust.deviceauth.__all__:
        assert hasattr(devicetrust.deviceauth, name), name
