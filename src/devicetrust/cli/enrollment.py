"""`devicetrust enrollment`: who may provision, how it proves it, what it gets; the pending
queue of manual allocations.

A symmetric-key group key (or per-device key) is printed once, at creation, and never again:
the platform keeps it only sealed. Every change goes through the provisioning service, which
audits it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.domain.errors import InvalidInput
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    AttestationKind,
    Enrollment,
    KeyShown,
    Reprovision,
)
from devicetrust.provisioning.symmetric import b64url

app = typer.Typer(
    help="Provisioning enrollments: groups, individual units, manual approvals.",
    no_args_is_help=True,
    epilog=output.example(
        "devicetrust enrollment create-group line-03 --symmetric-key \\",
        "  --pool 'line-03-left-welding-{01..24}'",
    ),
)

StaticOpt = Annotated[str | None, typer.Option("--static", help="Give this logical name.")]
PoolOpt = Annotated[
    str | None, typer.Option("--pool", help="Next free name of a pattern, e.g. cell-{01..24}.")
]
ManualOpt = Annotated[bool, typer.Option("--manual", help="Wait for an operator's approval.")]
ReassignOpt = Annotated[
    bool, typer.Option("--reassign", help="Re-provisioning applies the current allocation.")
]
ExpiresOpt = Annotated[
    datetime | None, typer.Option("--expires", help="Expiry (ISO 8601 with a timezone).")
]


def allocation_of(static: str | None, pool: str | None, manual: bool, reassign: bool) -> Allocation:
    chosen = [
        flag for flag, given in (("static", static), ("pool", pool), ("manual", manual)) if given
    ]
    if len(chosen) != 1:
        raise InvalidInput(
            "cli.invalid_allocation",
            "choose exactly one of --static NAME, --pool PATTERN, --manual",
        )
    reprovision = Reprovision.REASSIGN if reassign else Reprovision.KEEP
    if static:
        return Allocation(AllocationPolicy.STATIC, static_name=static, reprovision=reprovision)  # type: ignore[arg-type]
    if pool:
        return Allocation(AllocationPolicy.POOL, pool_pattern=pool, reprovision=reprovision)
    return Allocation(AllocationPolicy.MANUAL, reprovision=reprovision)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput("cli.invalid_time", "--expires needs a timezone (e.g. ...Z or +00:00)")
    return value


def show_enrollment(enrollment: Enrollment, as_json: bool, title: str = "Enrollment") -> None:
    if as_json:
        output.emit_json(enrollment.to_json())
        return
    a = enrollment.allocation
    output.fields(
        title,
        [
            ("id", enrollment.enrollment_id),
            ("name", enrollment.name),
            ("kind", f"{enrollment.kind.value} / {enrollment.attestation.value}"),
            ("unit", enrollment.physical_id),
            ("ca", enrollment.ca_id),
            ("allocation", a.static_name or a.pool_pattern or a.policy.value),
            ("re-provisioning", a.reprovision.value),
            ("replaces", enrollment.replaces),
            ("enabled", enrollment.enabled),
            ("expires", enrollment.expires_at),
        ],
    )


def show_key_once(shown: KeyShown, as_json: bool, what: str) -> None:
    try:
        key = b64url(shown.key)
        if as_json:
            output.emit_json({"enrollment": shown.enrollment.to_json(), "key": key})
            return
        show_enrollment(shown.enrollment, False, title="Enrollment created")
        output.warn(f"The {what} is shown this once; store it in the factory's secret store:")
        output.out.print(key)
    finally:
        shown.key[:] = bytes(len(shown.key))


@app.command(
    "create-group",
    epilog=output.example(
        "devicetrust enrollment create-group line-03 --symmetric-key \\",
        "  --pool 'line-03-left-welding-{01..24}'",
    ),
)
def create_group(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Group name.")],
    symmetric_key: Annotated[
        bool, typer.Option("--symmetric-key", help="Members hold HMAC(group key, id).")
    ] = False,
    ca: Annotated[str | None, typer.Option("--ca", help="x509: CA id of birth certs.")] = None,
    static: StaticOpt = None,
    pool: PoolOpt = None,
    manual: ManualOpt = False,
    reassign: ReassignOpt = False,
    expires: ExpiresOpt = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Create a group enrollment (x509 by CA, or symmetric key: the group key printed once)."""
    if symmetric_key == (ca is not None):
        raise InvalidInput("cli.invalid_enrollment", "give exactly one of --symmetric-key, --ca")
    cli = state(ctx)
    enrollments = cli.platform().provisioning.enrollments
    allocation = allocation_of(static, pool, manual, reassign)
    if ca is not None:
        created = enrollments.create_x509_group(
            name, ca, allocation, actor=cli.actor, expires_at=_aware(expires)
        )
        show_enrollment(created, as_json, title="Enrollment created")
        return
    shown = enrollments.create_symmetric_group(
        name, allocation, actor=cli.actor, expires_at=_aware(expires)
    )
    show_key_once(shown, as_json, "group key")


@app.command(
    "create-individual",
    epilog=output.example(
        "devicetrust enrollment create-individual <physical id> \\",
        "  --x509-fingerprint sha256:<hex> --static line-03-left-welding-12",
    ),
)
def create_individual(
    ctx: typer.Context,
    physical_id: Annotated[str, typer.Argument(help="The unit's physical id.")],
    x509_fingerprint: Annotated[
        str | None, typer.Option("--x509-fingerprint", help="sha256:<hex> of the birth key.")
    ] = None,
    tpm_ek: Annotated[
        Path | None, typer.Option("--tpm-ek", help="File: the EK's TPM2B_PUBLIC.")
    ] = None,
    tpm_ek_cert: Annotated[
        Path | None, typer.Option("--tpm-ek-cert", help="File: the EK certificate (DER).")
    ] = None,
    symmetric_key: Annotated[
        bool, typer.Option("--symmetric-key", help="Draw a per-device key (printed once).")
    ] = False,
    replaces: Annotated[
        str | None, typer.Option("--replaces", help="Pre-authorise taking over this name.")
    ] = None,
    require_hardware_key: Annotated[
        bool, typer.Option("--require-hardware-key", help="CSR key must be the attested key.")
    ] = False,
    static: StaticOpt = None,
    pool: PoolOpt = None,
    manual: ManualOpt = False,
    reassign: ReassignOpt = False,
    expires: ExpiresOpt = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Enroll one unit with its attestation material."""
    cli = state(ctx)
    enrollments = cli.platform().provisioning.enrollments
    allocation = allocation_of(static, pool, manual, reassign)
    if symmetric_key:
        shown = enrollments.create_individual_key(
            physical_id, allocation, actor=cli.actor, expires_at=_aware(expires), replaces=replaces
        )
        show_key_once(shown, as_json, "device key")
        return
    kind = AttestationKind.X509 if x509_fingerprint else AttestationKind.TPM
    created = enrollments.create_individual(
        physical_id,
        kind,
        allocation,
        actor=cli.actor,
        key_fingerprint=x509_fingerprint,
        tpm_ek_public=tpm_ek.read_bytes() if tpm_ek else None,
        tpm_ek_certificate=tpm_ek_cert.read_bytes() if tpm_ek_cert else None,
        expires_at=_aware(expires),
        replaces=replaces,
        require_hardware_key=require_hardware_key,
    )
    show_enrollment(created, as_json, title="Enrollment created")


@app.command("list", epilog=output.example("devicetrust enrollment list --json"))
def list_enrollments(ctx: typer.Context, as_json: output.JsonFlag = False) -> None:
    """List enrollments."""
    items = state(ctx).platform().provisioning.enrollments.list_all(limit=1000)
    if as_json:
        output.emit_json([e.to_json() for e in items])
        return
    output.table(
        "Enrollments",
        ["name", "kind", "method", "allocation", "enabled", "expires"],
        [
            (
                e.name,
                e.kind.value,
                e.attestation.value,
                e.allocation.policy.value,
                e.enabled,
                e.expires_at,
            )
            for e in items
        ],
    )


@app.command("show", epilog=output.example("devicetrust enrollment show line-03 --json"))
def show(ctx: typer.Context, ref: str, as_json: output.JsonFlag = False) -> None:
    """Show an enrollment (by id or name)."""
    show_enrollment(state(ctx).platform().provisioning.enrollments.get(ref), as_json)


@app.command("enable", epilog=output.example("devicetrust enrollment enable line-03"))
def enable(ctx: typer.Context, ref: str, as_json: output.JsonFlag = False) -> None:
    """Enable an enrollment."""
    cli = state(ctx)
    changed = cli.platform().provisioning.enrollments.set_enabled(ref, True, actor=cli.actor)
    show_enrollment(changed, as_json)


@app.command("disable", epilog=output.example("devicetrust enrollment disable line-03"))
def disable(ctx: typer.Context, ref: str, as_json: output.JsonFlag = False) -> None:
    """Disable an enrollment: its units are refused until it is enabled again."""
    cli = state(ctx)
    changed = cli.platform().provisioning.enrollments.set_enabled(ref, False, actor=cli.actor)
    show_enrollment(changed, as_json)


@app.command("pending", epilog=output.example("devicetrust enrollment pending --json"))
def pending(ctx: typer.Context, as_json: output.JsonFlag = False) -> None:
    """Units waiting for a manual allocation."""
    items = state(ctx).platform().provisioning.list_pending(limit=1000)
    if as_json:
        output.emit_json([r.to_json() for r in items])
        return
    output.table(
        "Pending units",
        ["physical id", "enrollment", "since"],
        [(r.physical_id, r.enrollment_id, r.requested_at) for r in items],
    )


@app.command(
    "approve",
    epilog=output.example("devicetrust enrollment approve <physical id> line-03-left-welding-12"),
)
def approve(
    ctx: typer.Context, physical_id: str, name: str, as_json: output.JsonFlag = False
) -> None:
    """Assign a logical name to a pending unit (applied at its next registration)."""
    cli = state(ctx)
    registration = cli.platform().provisioning.approve(physical_id, name, actor=cli.actor)
    if as_json:
        output.emit_json(registration.to_json())
        return
    output.success(f"{registration.physical_id} approved as {registration.logical_name}")
