"""The device's half of TPM attestation as JSON fields: what it sends to ask for a challenge,
and the evidence it answers with (the server's `provisioning.tpm` reads the same names; the
end-to-end tests pin both sides together). All TPM structures marshalled, then base64.

Never sends a private key or a key blob: only public areas, the recovered secret (which the
server alone issued, for this one challenge), the TPM's certification and its quote of the
PCRs (measured boot).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from devicetrust.device.tpm._errors import TpmOperationFailed
from devicetrust.device.tpm._keystore import TpmKey, TpmKeystore


def challenge_request(keystore: TpmKeystore) -> dict[str, str]:
    """The evidence for the challenge request: the AK's public area."""
    return {"ak_public": _b64(keystore.attestation_key_public())}


def answer_challenge(
    keystore: TpmKeystore, key: TpmKey, challenge_id: str, challenge: Mapping[str, str]
) -> dict[str, Any]:
    """Activate the server's credential, certify `key` by the AK with the server's nonce,
    quote the PCRs the server asks for (`quote_pcrs`) with the same nonce, and return the
    registration evidence (send it with the CSR of `key`)."""
    secret = keystore.activate_credential(
        _unb64(challenge, "credential_blob"), _unb64(challenge, "encrypted_secret")
    )
    nonce = _unb64(challenge, "nonce")
    certification = keystore.certify(key, nonce)
    evidence: dict[str, Any] = {
        "challenge_id": challenge_id,
        "ak_public": _b64(keystore.attestation_key_public()),
        "secret": _b64(secret),
        "key_public": _b64(key.public),
        "certify_info": _b64(certification.attest),
        "certify_signature": _b64(certification.signature),
    }
    selection = _quote_pcrs(challenge)
    if selection:  # measured boot: the AK quotes the PCRs the server asked for
        evidence.update(_quote(keystore, nonce, selection))
    return evidence


def answer_boot_challenge(keystore: TpmKeystore, challenge: Mapping[str, str]) -> dict[str, Any]:
    """A provisioned unit's re-attestation: the AK's quote of the PCRs the server's boot
    challenge names (`challenge_id`, `nonce`, `quote_pcrs`), with its nonce."""
    selection = _quote_pcrs(challenge)
    if not selection:
        raise TpmOperationFailed("the server's boot challenge names no PCR")
    return {
        "challenge_id": str(challenge.get("challenge_id", "")),
        "ak_public": _b64(keystore.attestation_key_public()),
        **_quote(keystore, _unb64(challenge, "nonce"), selection),
    }


def _quote(keystore: TpmKeystore, nonce: bytes, selection: tuple[int, ...]) -> dict[str, Any]:
    quote = keystore.quote(nonce, selection)
    return {
        "quote_info": _b64(quote.attest),
        "quote_signature": _b64(quote.signature),
        "pcr_values": {str(i): v.hex() for i, v in sorted(quote.pcrs.items())},
    }


def _quote_pcrs(challenge: Mapping[str, str]) -> tuple[int, ...]:
    text = str(challenge.get("quote_pcrs") or "").strip()
    try:
        return tuple(sorted({int(piece) for piece in text.split(",")})) if text else ()
    except ValueError as exc:
        raise TpmOperationFailed("the server's challenge has no valid quote_pcrs") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(challenge: Mapping[str, str], name: str) -> bytes:
    try:
        return base64.b64decode(challenge[name], validate=True)
    except (KeyError, binascii.Error) as exc:
        raise TpmOperationFailed(f"the server's challenge has no valid {name}") from exc
