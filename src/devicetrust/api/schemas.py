"""Wire schemas of the API: what a request may contain (`*In`) and what a response shows (`*Out`).

Inputs refuse unknown fields and bound every string and list, so a request is checked for
shape before any service sees it; the services still check meaning (names, ids, transitions).
Outputs are built from service records field by field: no secret, hash or sealed value has a
field here, except the one-time `token`/`secret` of the two creation responses.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from devicetrust.api.instants import Instant
from devicetrust.auth import Scope
from devicetrust.domain.lifecycle import DeviceState, ReplacementFate
from devicetrust.events import DeliveryStatus

# Generous bounds on the wire; the domain rules are stricter where it matters.
Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Serial = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Component = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Reason = Annotated[str, StringConstraints(max_length=64)]
Note = Annotated[str, StringConstraints(max_length=256)]
AttributeValue = (
    Annotated[str, StringConstraints(max_length=256)]
    | list[Annotated[str, StringConstraints(max_length=64)]]
    | None
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    # from_attributes: an output schema reads the service's frozen record by field name.
    model_config = ConfigDict(frozen=True, from_attributes=True)

    @classmethod
    def of(cls, record: object) -> Self:
        return cls.model_validate(record)


# ---- physical identities ------------------------------------------------------------------


class UnitIn(_In):
    model: Name
    hardware_serials: dict[Component, Serial] = Field(default_factory=dict, max_length=64)
    manufactured_at: Instant | None = None


class UnitBatchIn(_In):
    units: list[UnitIn] = Field(min_length=1, max_length=1000)


class StateChangeIn(_In):
    state: DeviceState
    reason: Note = ""


class ReleaseIn(_In):
    reason: Note = ""


class PhysicalOut(_Out):
    physical_id: str
    model: str
    state: DeviceState
    manufactured_at: datetime
    hardware_serials: dict[str, str]
    key_fingerprints: list[str]
    logical_name: str | None


class PhysicalPage(_Out):
    items: list[PhysicalOut]
    limit: int
    offset: int


class PhysicalBatchOut(_Out):
    items: list[PhysicalOut]


# ---- logical identities -------------------------------------------------------------------


class LogicalIn(_In):
    name: Name
    attributes: dict[Ident, AttributeValue] = Field(default_factory=dict, max_length=32)


class AttributesIn(_In):
    attributes: dict[Ident, AttributeValue] = Field(max_length=32)


class BindIn(_In):
    physical_id: Ident


class UnbindIn(_In):
    reason: Reason = "unbound"


class RenameIn(_In):
    new_name: Name


class TransferIn(_In):
    physical_id: Ident


class ReplaceIn(_In):
    new_physical_id: Ident
    old_physical_id: Ident | None = None
    fate: ReplacementFate = ReplacementFate.DECOMMISSIONED
    reason: Reason = "replaced"


class LogicalOut(_Out):
    logical_id: str
    name: str
    attributes: dict[str, Any]
    created_at: datetime
    physical_id: str | None
    former_names: list[str]


class LogicalPage(_Out):
    items: list[LogicalOut]
    limit: int
    offset: int


class BindingOut(_Out):
    logical_id: str
    logical_name: str
    name_at_start: str
    physical_id: str
    started_at: datetime
    start_reason: str
    started_by: str
    ended_at: datetime | None
    end_reason: str | None
    ended_by: str | None


class HistoryOut(_Out):
    """Every binding, oldest first."""

    bindings: list[BindingOut]


class HolderOut(_Out):
    """Who held the identity at `at` (`holder` is null if nobody did)."""

    at: datetime
    holder: BindingOut | None


class ReplacementOut(_Out):
    logical_name: str
    old_physical_id: str
    new_physical_id: str
    old_unit_state: DeviceState
    at: datetime
    event_id: str


# ---- API keys -----------------------------------------------------------------------------


class ApiKeyIn(_In):
    name: Name
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope))


class ApiKeyOut(_Out):
    key_id: str
    name: str
    scopes: list[Scope]

    @field_validator("scopes", mode="before")
    @classmethod
    def _sorted(cls, value: Iterable[Scope]) -> list[Scope]:
        return sorted(value)

    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class ApiKeyCreatedOut(_Out):
    """The only response that ever carries the token: store it now, it cannot be shown again."""

    key: ApiKeyOut
    token: str


class ApiKeyList(_Out):
    items: list[ApiKeyOut]


# ---- audit --------------------------------------------------------------------------------


class AuditEntryOut(_Out):
    seq: int
    occurred_at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(_Out):
    items: list[AuditEntryOut]
    next_after: int | None = Field(description="pass as `after` to read the next page")


class ChainBreakOut(_Out):
    seq: int
    reason: str


class AuditVerifyOut(_Out):
    ok: bool
    count: int = Field(description="entries that verified (all of them when ok)")
    head_seq: int = Field(description="the last sequence number when verification started")
    first_break: ChainBreakOut | None


# ---- webhooks -----------------------------------------------------------------------------

EventFilter = Annotated[str, StringConstraints(min_length=1, max_length=80)]


class WebhookIn(_In):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    event_types: list[EventFilter] | None = Field(
        default=None,
        max_length=64,
        description="event types or `family.*` patterns; omitted means every event",
    )


class WebhookOut(_Out):
    id: str = Field(validation_alias=AliasChoices("webhook_id", "id"))
    url: str
    event_types: list[str]
    enabled: bool
    created_at: datetime
    created_by: str


class WebhookCreatedOut(_Out):
    """The only response that ever carries the signing secret: store it now."""

    webhook: WebhookOut
    secret: str


class WebhookList(_Out):
    items: list[WebhookOut]


class DeliveryOut(_Out):
    id: int = Field(validation_alias=AliasChoices("delivery_id", "id"))
    webhook_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None


class DeliveryList(_Out):
    items: list[DeliveryOut]


# ---- problems -----------------------------------------------------------------------------


class ProblemOut(_Out):
    """RFC 9457 problem details, as every error is returned (`application/problem+json`)."""

    type: str = Field(examples=["urn:devicetrust:problem:identity.name_taken"])
    title: str
    status: int
    detail: str
    code: str = Field(description="stable machine-readable error code")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="the fields at fault, for request-validation errors"
    )
