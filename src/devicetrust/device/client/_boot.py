"""Boot re-attestation from a provisioned TPM unit: between provisionings, it proves its
current boot state (after a reboot or a firmware update) so the platform's posture report
and `measured_boot_required` follow it.

    attest_boot(client.state, keystore, ca_bundle)   # -> the server's verdict (JSON)

Two HTTPS calls to the device API, each authenticated by a fresh device JWT signed by the
operational key (`x5t#S256` = its certificate; a JWT is single-use): the boot challenge
(nonce, PCRs), then the attestation key's TPM2_Quote of those PCRs with that nonce.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devicetrust.device.client._connection import _jwt
from devicetrust.device.client._https import request, tls_context
from devicetrust.device.client._state import DeviceState
from devicetrust.device.keystore import Keystore
from devicetrust.domain.clock import Clock, SystemClock

CHALLENGE_PATH = "/v1/device/boot-attestation/challenge"
QUOTE_PATH = "/v1/device/boot-attestation"


def attest_boot(
    state: DeviceState,
    keystore: Keystore,
    ca_bundle: Path | str,
    *,
    clock: Clock | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Quote the boot PCRs the server asks for; `keystore` is the unit's `tpm2:` keystore
    (its AK signs the quote, its operational key the JWTs). Returns the recorded
    attestation (`verdict`, `golden`, `detail`, `pcrs`); refusals raise
    `ProvisioningRefused` with the server's code."""
    from devicetrust.device.tpm import answer_boot_challenge

    tpm = getattr(keystore, "tpm", None)
    if tpm is None:
        raise ValueError("boot attestation needs the unit's tpm2: keystore")
    clock = clock or SystemClock()
    context = tls_context(ca_bundle)
    base = state.api_url.rstrip("/")

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        token = _jwt(state, keystore, clock, base)
        return request(
            context, base + path, json.dumps(body).encode(), timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        ).json()  # fmt: skip

    challenge = post(CHALLENGE_PATH, {})
    return post(QUOTE_PATH, answer_boot_challenge(tpm, challenge))
