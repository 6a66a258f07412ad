"""The device client: provisioning, the data-plane connection, certificate renewal and the
offline buffer of a device (docs/device-sdk.md).

    state = provision("https://platform:8443", physical_id,
                      SymmetricKeyAttestation(keystore), keystore=keystore,
                      data_dir=data_dir, ca_bundle="factory-ca.pem")
    with DeviceClient(data_dir, keystore, "factory-ca.pem") as client:
        client.connect()
        client.publish_diagnostics({"parts_per_hour": 41})

Talks to the server only over HTTPS and MQTT; imports no server module.
"""

from devicetrust.device.client._async import AsyncDeviceClient
from devicetrust.device.client._attestation import (
    Attestation,
    SymmetricKeyAttestation,
    TpmAttestation,
    X509Attestation,
)
from devicetrust.device.client._backoff import Backoff
from devicetrust.device.client._boot import attest_boot
from devicetrust.device.client._buffer import BufferedMessage, OfflineBuffer, Overflow
from devicetrust.device.client._client import DeviceClient
from devicetrust.device.client._connection import Feedback
from devicetrust.device.client._errors import (
    BufferFull,
    ConnectRefused,
    DeviceClientError,
    NotProvisioned,
    ProvisioningPending,
    ProvisioningRefused,
    RenewalFailed,
    ServerUnreachable,
    StateFileInvalid,
)
from devicetrust.device.client._provisioning import provision
from devicetrust.device.client._renewal import renewal_due_at
from devicetrust.device.client._state import DeviceState, load_state

__all__ = [
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
