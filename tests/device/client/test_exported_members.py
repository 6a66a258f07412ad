"""The public surface of `devicetrust.device.client` is what `__all__` says, every name
exists, and the error tree has one root with stable codes."""

from __future__ import annotations

import devicetrust.device.client as client


def test_client_exports() -> None:
    assert sorted(client.__all__) == sorted(
        [
            "AsyncDeviceClient",
            "Attestation",
            "Backoff",
            "BufferFull",
            "BufferedMessage",
            "ConnectRefused",
            "DeviceClient",
            "DeviceClientError",
            "DeviceState",
            "Feedback",
            "NotProvisioned",
            "OfflineBuffer",
            "Overflow",
            "ProvisioningPending",
            "ProvisioningRefused",
            "RenewalFailed",
            "ServerUnreachable",
            "StateFileInvalid",
            "SymmetricKeyAttestation",
            "TpmAttestation",
            "X509Attestation",
            "attest_boot",
            "load_state",
            "provision",
            "renewal_due_at",
        ]
    )
    for name in client.__all__:
        assert getattr(client, name) is not None


def test_every_error_has_the_one_root_and_a_distinct_code() -> None:
    errors: list[type[client.DeviceClientError]] = [
        client.BufferFull, client.ConnectRefused, client.NotProvisioned,
        client.ProvisioningPending, client.ProvisioningRefused, client.RenewalFailed,
        client.ServerUnreachable, client.StateFileInvalid,
    ]
    assert all(issubclass(error, client.DeviceClientError) for error in errors)
    assert len({error.code for error in errors}) == len(errors)
