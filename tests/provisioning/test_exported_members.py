"""The public surface of `devicetrust.provisioning` is what `__all__` says, and no more."""

from __future__ import annotations

import devicetrust.provisioning as provisioning


def test_all_names_exist_and_are_sorted() -> None:
    assert provisioning.__all__ == sorted(provisioning.__all__)
    for name in provisioning.__all__:
        assert hasattr(provisioning, name), name


def test_the_method_protocol_is_public() -> None:
    for name in ("AttestationMethod", "ChallengingMethod", "Authorization", "RegistrationRequest"):
        assert name in provisioning.__all__
    assert isinstance(
        provisioning.SymmetricKeyMethod.__new__(provisioning.SymmetricKeyMethod),
        provisioning.AttestationMethod,
    )
