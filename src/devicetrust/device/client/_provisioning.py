"""Provisioning over HTTPS: prove the unit's identity with one attestation method, get a
logical identity and an operational certificate for a key created in the keystore, and
persist what the server answered (`DeviceState`).

    POST /v1/provisioning/challenge  (x509: a single-use nonce)
    POST /v1/provisioning/register   {physical_id, method, csr, evidence}
         200 ProvisionedOut | 202 pending + Retry-After | 429 + Retry-After | problem+json

Order: create the new key; build and sign its CSR in the keystore; (challenge;) register,
with fresh evidence at each attempt, waiting out 202/429 as the server advises until
`max_wait`; save the new state; only then delete the key of the previous state (a
re-provisioning). A refusal deletes the new key and leaves the old state untouched.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devicetrust.device.client._attestation import Attestation
from devicetrust.device.client._errors import (
    NotProvisioned,
    ProvisioningPending,
    ServerUnreachable,
)
from devicetrust.device.client._evidence import csr_pem
from devicetrust.device.client._https import Answer, request, tls_context
from devicetrust.device.client._state import DeviceState, load_state, save_state
from devicetrust.device.keystore import DeviceKey, KeyNotFound, Keystore
from devicetrust.domain.clock import Clock, SystemClock
from devicetrust.domain.ids import LogicalName, PhysicalId

DEFAULT_RETRY = 5.0


@dataclass
class Provisioner:
    """The provisioning client of one unit (see `provision`)."""

    api_url: str
    physical_id: str
    attestation: Attestation
    keystore: Keystore
    data_dir: Path
    ca_bundle: Path
    clock: Clock = field(default_factory=SystemClock)
    sleep: Callable[[float], None] = time.sleep
    max_wait: float = 300.0
    timeout: float = 30.0

    def run(self) -> DeviceState:
        context = tls_context(self.ca_bundle)
        try:
            previous: DeviceState | None = load_state(self.data_dir)
        except NotProvisioned:
            previous = None
        label = f"operational-{secrets.token_hex(4)}"
        key = self.keystore.create_key(label)
        try:
            csr = csr_pem(key)
            answer = self._register(context, key, csr)
        except BaseException:
            self.keystore.delete_key(label)
            raise
        state = self._state_of(answer.json(), label)
        save_state(self.data_dir, state)
        if previous is not None and previous.key_label != label:
            with contextlib.suppress(KeyNotFound):
                self.keystore.delete_key(previous.key_label)
        return state

    def _register(self, context: ssl.SSLContext, key: DeviceKey, csr: bytes) -> Answer:
        waited = 0.0
        while True:
            answer = self._attempt(context, key, csr)
            if answer.status == 200:
                return answer
            delay = answer.retry_after if answer.retry_after is not None else DEFAULT_RETRY
            if waited + delay > self.max_wait:
                what = "pending approval" if answer.status == 202 else "rate-limited"
                raise ProvisioningPending(
                    f"registration still {what} after {waited:.0f} s", retry_after=delay
                )
            self.sleep(delay)
            waited += delay

    def _attempt(self, context: ssl.SSLContext, key: DeviceKey, csr: bytes) -> Answer:
        challenge: dict[str, Any] | None = None
        asked = self.attestation.challenge_request()
        if asked is not None:
            issued = self._post(context, "challenge", {
                "physical_id": self.physical_id, "method": self.attestation.method,
                "evidence": asked,
            })
            if issued.status == 429:
                return issued
            challenge = issued.json()
        evidence = self.attestation.evidence(self.physical_id, key, csr, challenge, self.clock)
        return self._post(context, "register", {
            "physical_id": self.physical_id, "method": self.attestation.method,
            "csr": csr.decode("ascii"), "evidence": evidence,
        })

    def _post(self, context: ssl.SSLContext, route: str, body: dict[str, Any]) -> Answer:
        url = f"{self.api_url.rstrip('/')}/v1/provisioning/{route}"
        return request(context, url, json.dumps(body).encode(), timeout=self.timeout)

    def _state_of(self, out: dict[str, Any], label: str) -> DeviceState:
        try:
            chain = str(out["certificate_pem"]).strip() + "\n"
            if out.get("chain_pem"):
                chain += str(out["chain_pem"]).strip() + "\n"
            name = out.get("logical_name")
            return DeviceState(
                physical_id=PhysicalId(str(out["physical_id"])),
                logical_name=LogicalName(name) if name else None,
                api_url=self.api_url.rstrip("/"),
                key_label=label,
                certificate_chain_pem=chain,
                mqtt_host=str(out["mqtt_host"]),
                mqtt_port=int(out["mqtt_port"]),
                topics={str(k): str(v) for k, v in dict(out.get("topics") or {}).items()},
                policy=dict(out.get("policy") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ServerUnreachable(
                "the provisioning answer lacks a certificate or an endpoint"
            ) from exc


def provision(
    api_url: str,
    physical_id: str,
    attestation: Attestation,
    *,
    keystore: Keystore,
    data_dir: Path,
    ca_bundle: Path,
    clock: Clock | None = None,
    max_wait: float = 300.0,
    timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> DeviceState:
    """Provision (or re-provision) the unit and persist its state in `data_dir`.

    Raises `ProvisioningRefused` (the server's problem `code`), `ProvisioningPending` (still
    202/429 after `max_wait` seconds) or `ServerUnreachable`."""
    return Provisioner(
        api_url, physical_id, attestation, keystore, Path(data_dir), Path(ca_bundle),
        clock or SystemClock(), sleep, max_wait, timeout,
    ).run()
