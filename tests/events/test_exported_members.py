"""The public surface of `devicetrust.events` and `devicetrust.vault` is what `__all__` says."""

from __future__ import annotations

import devicetrust.events
import devicetrust.vault


def test_events_exports() -> None:
    assert sorted(devicetrust.events.__all__) == sorted(
        [
            "SIGNATURE_HEADER",
            "AuditLog",
            "Delivery",
            "DeliveryReport",
            "DeliveryStatus",
            "Dispatcher",
            "SignatureError",
            "VerifyResult",
            "Webhook",
            "WebhookService",
            "sign",
            "verify",
        ]
    )
    for name in devicetrust.events.__all__:
        assert getattr(devicetrust.events, name) is not None
        assert name in dir(devicetrust.events)


def test_vault_exports() -> None:
    assert sorted(devicetrust.vault.__all__) == sorted(
        ["KEK_ENV_VAR", "KEK_SIZE", "OVERHEAD", "LazyVault", "Sealer", "Vault", "generate_kek_text"]
    )
    for name in devicetrust.vault.__all__:
        assert getattr(devicetrust.vault, name) is not None
