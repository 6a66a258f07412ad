"""Event types written to the outbox (and so to webhooks) for every identity and credential
change."""

from __future__ import annotations

import enum


class EventType(enum.StrEnum):
    IDENTITY_CREATED = "identity.created"
    LOGICAL_CREATED = "logical.created"
    LOGICAL_UPDATED = "logical.updated"
    DEVICE_BOUND = "device.bound"
    DEVICE_UNBOUND = "device.unbound"
    DEVICE_RENAMED = "device.renamed"
    DEVICE_TRANSFERRED = "device.transferred"
    DEVICE_REPLACED = "device.replaced"
    DEVICE_STATE_CHANGED = "device.state_changed"
    DEVICE_KEY_REGISTERED = "device.key_registered"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_DELETED = "webhook.deleted"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    CREDENTIAL_ISSUED = "credential.issued"
    CREDENTIAL_REVOKED = "credential.revoked"
    CREDENTIAL_HOLD_RELEASED = "credential.hold_released"
    CA_CREATED = "ca.created"
    CA_ROTATED = "ca.rotated"
    CA_IMPORTED = "ca.imported"
    CRL_GENERATED = "crl.generated"
    ENROLLMENT_CREATED = "enrollment.created"
    ENROLLMENT_UPDATED = "enrollment.updated"
    DEVICE_PROVISIONED = "device.provisioned"
    PROVISIONING_PENDING = "provisioning.pending"
    PROVISIONING_APPROVED = "provisioning.approved"
    FACTORY_KEY_ADDED = "factory_key.added"
    MANIFEST_IMPORTED = "manifest.imported"
    # device authentication credentials (deviceauth): HMAC token key versions, JWT public keys
    DEVICE_CREDENTIAL_ADDED = "device_credential.added"
    DEVICE_CREDENTIAL_REVOKED = "device_credential.revoked"
    # security policy (policy): settings per scope, conscious relaxations
    POLICY_UPDATED = "policy.updated"
    POLICY_RELAXED = "policy.relaxed"
    POLICY_RELAXATION_REVOKED = "policy.relaxation_revoked"
    # measured boot (attestation): known-good PCR values, verified TPM quotes
    GOLDEN_MEASUREMENT_ADDED = "golden_measurement.added"
    GOLDEN_MEASUREMENT_REVOKED = "golden_measurement.revoked"
    BOOT_ATTESTED = "device.boot_attested"
