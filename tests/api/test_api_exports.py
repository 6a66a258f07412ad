"""The public surface of `devicetrust.api` and `devicetrust.auth` is what `__all__` says."""

from __future__ import annotations

import devicetrust.api
import devicetrust.auth


def test_api_exports() -> None:
    assert devicetrust.api.__all__ == ["create_app"]


def test_auth_exports() -> None:
    assert sorted(devicetrust.auth.__all__) == [
        "ApiKey",
        "ApiKeyService",
        "Scope",
        "has_scope",
        "parse_scopes",
    ]
    for name in devicetrust.auth.__all__:
        assert getattr(devicetrust.auth, name) is not None
