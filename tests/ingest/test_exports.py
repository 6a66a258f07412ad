"""The public surface of `devicetrust.ingest` is pinned: the embedded gateway builds on it."""

from __future__ import annotations

import devicetrust.ingest as ingest


def test_public_names() -> None:
    assert sorted(ingest.__all__) == sorted(
        [
            "MAX_BATCH",
            "BrokerFiles",
            "BrokerPlan",
            "DynsecControl",
            "DynsecError",
            "Feedback",
            "FeedbackQueue",
            "FeedbackStatus",
            "FollowReport",
            "InboundMessage",
            "MessageKind",
            "MessageStore",
            "Outcome",
            "RevocationFollower",
            "Routed",
            "StoreResult",
            "StoredMessage",
            "WrittenConfig",
            "write_mosquitto_config",
        ]
    )
    for name in ingest.__all__:
        assert getattr(ingest, name) is not None


def test_the_store_api_needs_no_mqtt_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import devicetrust.ingest, devicetrust.ingest.store, devicetrust.ingest.feedback; "
        "assert not any(m.startswith('paho') for m in sys.modules), 'paho imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
