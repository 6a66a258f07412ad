"""The attestation methods of the device client: how a unit proves, at provisioning, that it
is the unit it claims to be. Each builds the JSON evidence of the wire format
(`_evidence` for X.509 and symmetric keys, `device.tpm` for the TPM); none does I/O except
through its keystore.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from devicetrust.device.client._evidence import derive_member_key, symmetric_token, x509_evidence
from devicetrust.device.keystore import DeviceKey, Keystore
from devicetrust.domain.clock import Clock

if TYPE_CHECKING:
    from devicetrust.device.keystore._tpm2 import Tpm2Keystore


class Attestation(Protocol):
    """One attestation method: how the device proves it is the unit it claims to be."""

    @property
    def method(self) -> str:
        """`x509`, `symmetric-key` or `tpm` (the wire name)."""
        ...

    def challenge_request(self) -> dict[str, Any] | None:
        """The evidence of a challenge request, or None when the method needs no challenge."""
        ...

    def evidence(
        self, physical_id: str, key: DeviceKey, csr: bytes, challenge: Mapping[str, Any] | None,
        clock: Clock,
    ) -> dict[str, Any]:
        """The registration evidence for the new operational `key` and its `csr`
        (`challenge`: the server's ChallengeOut)."""
        ...


@dataclass(frozen=True)
class X509Attestation:
    """A birth certificate issued at the factory: its key (in the keystore) signs the
    server's nonce bound to the unit and the CSR."""

    birth_key: DeviceKey
    birth_chain_pem: str

    @property
    def method(self) -> str:
        return "x509"

    def challenge_request(self) -> dict[str, Any] | None:
        return {}

    def evidence(
        self, physical_id: str, key: DeviceKey, csr: bytes, challenge: Mapping[str, Any] | None,
        clock: Clock,
    ) -> dict[str, Any]:
        if challenge is None:
            raise ValueError("x509 attestation answers a challenge")
        return x509_evidence(
            self.birth_key, self.birth_chain_pem, str(challenge["challenge_id"]),
            str(challenge["payload"]["nonce"]), physical_id, csr,
        )


@dataclass(frozen=True)
class SymmetricKeyAttestation:
    """A device key sealed in the keystore at the factory (`label`): a single-use token MACed
    with it. With `group=True` the sealed secret is the group key and the device key is
    derived from it (HMAC-SHA256(group key, physical id))."""

    keystore: Keystore
    label: str = "provisioning-key"
    group: bool = False
    token_lifetime: timedelta = timedelta(minutes=5)

    @property
    def method(self) -> str:
        return "symmetric-key"

    def challenge_request(self) -> dict[str, Any] | None:
        return None

    def evidence(
        self, physical_id: str, key: DeviceKey, csr: bytes, challenge: Mapping[str, Any] | None,
        clock: Clock,
    ) -> dict[str, Any]:
        secret = self.keystore.unseal(self.label)
        device_key = derive_member_key(secret, physical_id) if self.group else secret
        try:
            expires = clock.now() + self.token_lifetime
            return {"token": symmetric_token(device_key, physical_id, expires)}
        finally:
            secret[:] = bytes(len(secret))
            device_key[:] = bytes(len(device_key))


@dataclass(frozen=True)
class TpmAttestation:
    """TPM 2.0: the endorsement key registered at the factory (individual enrollment). The
    device activates the server's credential with its EK and AK, and its AK certifies the
    operational key, which must live in the same TPM: `keystore` is the `tpm2:` keystore
    the operational key is created in. Needs the `tpm` extra."""

    keystore: Tpm2Keystore

    @property
    def method(self) -> str:
        return "tpm"

    def challenge_request(self) -> dict[str, Any] | None:
        from devicetrust.device.tpm import challenge_request

        return challenge_request(self.keystore.tpm)

    def evidence(
        self, physical_id: str, key: DeviceKey, csr: bytes, challenge: Mapping[str, Any] | None,
        clock: Clock,
    ) -> dict[str, Any]:
        from devicetrust.device.tpm import answer_challenge

        blob = getattr(key, "blob", None)
        if challenge is None or blob is None:
            raise ValueError("TPM attestation answers a challenge for a key of the same TPM")
        payload = {str(k): str(v) for k, v in dict(challenge["payload"]).items()}
        return answer_challenge(self.keystore.tpm, blob, str(challenge["challenge_id"]), payload)
