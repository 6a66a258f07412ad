"""Boot re-attestation by the device itself, authenticated by its own credential (mTLS, a
JWT signed by its key, or an HMAC token; `api.device_auth`):

    POST /v1/device/boot-attestation/challenge     a nonce and the PCRs to quote
    POST /v1/device/boot-attestation               the AK's quote -> the verdict

The unit is the one its credential proves, never one the body names. Every check, write and
audit entry is `provisioning.BootReattestation`'s.
"""

from __future__ import annotations

import base64

from fastapi import APIRouter, status

from devicetrust.api.attestation_schemas import BootAttestationOut, BootChallengeOut, BootQuoteIn
from devicetrust.api.device_auth import DEVICE_AUTH_REASON, DeviceDep
from devicetrust.api.platform import PlatformDep
from devicetrust.api.security import allow_insecure

router = APIRouter(prefix="/v1/device/boot-attestation", tags=["devices"])


@router.post(
    "/challenge",
    summary="A single-use nonce for a TPM quote of the boot PCRs",
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow_insecure(DEVICE_AUTH_REASON)],
)
def boot_challenge(device: DeviceDep, platform: PlatformDep) -> BootChallengeOut:
    issued = platform.boot_reattestation.challenge(device.physical_id)
    return BootChallengeOut(
        challenge_id=issued.challenge_id,
        nonce=base64.b64encode(issued.nonce).decode("ascii"),
        quote_pcrs=",".join(str(pcr) for pcr in issued.pcrs),
        expires_at=issued.expires_at,
    )


@router.post(
    "",
    summary="The attestation key's quote of the boot PCRs: judged and recorded",
    dependencies=[allow_insecure(DEVICE_AUTH_REASON)],
)
def boot_quote(body: BootQuoteIn, device: DeviceDep, platform: PlatformDep) -> BootAttestationOut:
    attested = platform.boot_reattestation.submit(device.physical_id, body.model_dump())
    return BootAttestationOut.of(attested)
