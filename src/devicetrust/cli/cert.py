"""`devicetrust cert` and `devicetrust crl`: certificates issued from CSRs, their revocation,
and the CAs' revocation lists.

Serials are shown and accepted as `openssl x509 -serial` prints them (upper-case hex; colons,
lower case and a `serial=` prefix are accepted too). Revocation reasons are RFC 5280 names
as openssl writes them (`keyCompromise`, `superseded`, `cessationOfOperation`, ...).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from devicetrust.cli import output
from devicetrust.cli.ca import read_file, write_output
from devicetrust.cli.context import state
from devicetrust.domain.errors import InvalidInput
from devicetrust.pki import CaRole, IssuedCertificate, PkiService, Profile, parse_reason

app = typer.Typer(
    help="Certificates: issue from a CSR, list, show, revoke.",
    no_args_is_help=True,
    epilog=output.example(
        'devicetrust cert issue --csr device.csr --device "$UNIT" --out cert.pem',
        "devicetrust cert revoke --serial 4A3F... --reason keyCompromise",
    ),
)

OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Write to this file (default: stdout).", dir_okay=False),
]
SerialText = Annotated[str, typer.Argument(help="Serial, hex as `openssl x509 -serial` prints it.")]


@app.command(
    "issue",
    epilog=output.example(
        "UNIT=$(devicetrust factory register --json | jq -r .physical_id)",
        "openssl ecparam -genkey -name prime256v1 -out device.key",
        'openssl req -new -key device.key -subj "/CN=$UNIT" -out device.csr',
        'devicetrust cert issue --csr device.csr --device "$UNIT" --out cert.pem',
    ),
)
def issue(
    ctx: typer.Context,
    csr: Annotated[
        Path, typer.Option("--csr", help="The certificate request, PEM or DER.", dir_okay=False)
    ],
    device: Annotated[
        str | None,
        typer.Option("--device", help="Physical id of the unit (device and birth profiles)."),
    ] = None,
    profile: Annotated[
        str, typer.Option("--profile", help="device, birth (factory) or server.")
    ] = Profile.DEVICE.value,
    dns: Annotated[
        list[str] | None, typer.Option("--dns", help="DNS name of a server (repeat).")
    ] = None,
    ip: Annotated[
        list[str] | None, typer.Option("--ip", help="IP address of a server (repeat).")
    ] = None,
    lifetime_hours: Annotated[
        float | None,
        typer.Option("--lifetime-hours", min=0.1, help="Shorter than the profile's default."),
    ] = None,
    out: OutOpt = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Issue a certificate for the key in a CSR. Subject and names come from the registry
    (CN = physical id, SAN urn:uuid and the logical name); the CSR may only echo them."""
    cli = state(ctx)
    issued = cli.platform().pki.issue_from_csr(
        read_file(csr),
        device,
        profile,
        actor=cli.actor,
        dns_names=dns or [],
        ip_addresses=ip or [],
        lifetime=timedelta(hours=lifetime_hours) if lifetime_hours is not None else None,
    )
    if out is not None or not as_json:
        write_output(out, issued.pem.encode("ascii"), what=f"certificate {issued.serial_hex}")
    if as_json:
        output.emit_json({**issued.to_json(), "pem": issued.pem})
    else:
        output.success(
            f"certificate {issued.serial_hex} issued ({issued.profile.value}), "
            f"valid until {output.when(issued.not_after)}"
        )


@app.command("list", epilog=output.example('devicetrust cert list --device "$UNIT" --json'))
def list_(
    ctx: typer.Context,
    device: Annotated[str | None, typer.Option("--device", help="Only this unit's.")] = None,
    profile: Annotated[Profile | None, typer.Option("--profile", help="Only this profile.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Hide revoked ones.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (paging).")] = 0,
    as_json: output.JsonFlag = False,
) -> None:
    """List issued certificates, newest first."""
    found = (
        state(ctx)
        .platform()
        .pki.list_certificates(
            physical_id=device,
            profile=profile,
            include_revoked=not active,
            limit=limit,
            offset=offset,
        )
    )
    if as_json:
        output.emit_json({"certificates": [c.to_json() for c in found]})
        return
    output.table(
        None,
        ["serial", "profile", "physical id", "logical name", "not after", "revoked"],
        [
            (
                c.serial_hex,
                c.profile.value,
                c.physical_id,
                c.logical_name,
                c.not_after,
                c.revocation_reason.value if c.revocation_reason else None,
            )
            for c in found
        ],
    )


@app.command(
    "show",
    epilog=output.example(
        "devicetrust cert show 4A3F0C... --json",
        "devicetrust cert show 4A3F0C... --der --out cert.der",
    ),
)
def show(
    ctx: typer.Context,
    serial: SerialText,
    pem: Annotated[bool, typer.Option("--pem", help="Print the certificate, PEM.")] = False,
    der: Annotated[bool, typer.Option("--der", help="Write the certificate, DER.")] = False,
    out: OutOpt = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Show a certificate: its fields, or the certificate itself as PEM or DER."""
    if pem and der:
        raise InvalidInput("cli.conflicting_options", "give --pem or --der, not both")
    found = state(ctx).platform().pki.get_certificate(_serial(serial))
    if der:
        _refuse_binary_to_terminal(out)
        write_output(out, found.der, what=f"certificate {found.serial_hex}")
    elif pem or out is not None:
        write_output(out, found.pem.encode("ascii"), what=f"certificate {found.serial_hex}")
    if as_json:
        output.emit_json({**found.to_json(), "pem": found.pem})
    elif not (pem or der or out):
        _show(found)


def _show(found: IssuedCertificate) -> None:
    shown = {k: v for k, v in found.to_json().items() if v is not None}
    output.fields(f"Certificate {found.serial_hex}", list(shown.items()))


@app.command(
    "revoke",
    epilog=output.example(
        "devicetrust cert revoke --serial 4A3F0C... --reason keyCompromise",
        'devicetrust cert revoke --device "$UNIT" --reason cessationOfOperation',
    ),
)
def revoke(
    ctx: typer.Context,
    serial: Annotated[
        str | None,
        typer.Option("--serial", help="Hex serial as openssl prints it (4A:3F... or 4a3f...)."),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", help="Or: revoke every unexpired certificate of this unit."),
    ] = None,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="RFC 5280 reason: unspecified, keyCompromise, affiliationChanged, superseded, "
            "cessationOfOperation, certificateHold, privilegeWithdrawn, ...",
        ),
    ] = "unspecified",
    as_json: output.JsonFlag = False,
) -> None:
    """Revoke a certificate (or all of a unit's); its CA's CRL is re-signed at once."""
    if (serial is None) == (device is None):
        raise InvalidInput("cli.conflicting_options", "give --serial or --device, exactly one")
    parse_reason(reason)  # refuse a bad reason before anything is looked up
    cli = state(ctx)
    pki = cli.platform().pki
    if serial is not None:
        revoked = [pki.revoke(_serial(serial), reason, actor=cli.actor)]
    else:
        assert device is not None
        revoked = pki.revoke_all_for(device, reason, actor=cli.actor)
    if as_json:
        output.emit_json({"revoked": [c.to_json() for c in revoked]})
        return
    for cert in revoked:
        output.success(f"certificate {cert.serial_hex} revoked ({reason})")
    if not revoked:
        output.note("nothing to revoke: the unit has no unexpired, unrevoked certificate")


def crl(
    ctx: typer.Context,
    out: OutOpt = None,
    der: Annotated[bool, typer.Option("--der", help="DER instead of PEM.")] = False,
    ca: Annotated[
        str,
        typer.Option(
            "--ca", help="CA id, or the role of an active CA: issuing, manufacturing, root."
        ),
    ] = CaRole.ISSUING.value,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Sign a new CRL now instead of the latest one.")
    ] = False,
) -> None:
    """The latest CRL of a CA (default: the issuing CA), PEM: what
    `openssl verify -crl_check -CRLfile` takes. `devicetrust serve` also publishes it at the
    CRL distribution point written into certificates, and answers OCSP at /pki/ocsp."""
    if der:
        _refuse_binary_to_terminal(out)
    cli = state(ctx)
    pki = cli.platform().pki
    ca_id = _ca_id(pki, ca)
    record = pki.generate_crl(ca_id, actor=cli.actor) if refresh else pki.latest_crl_record(ca_id)
    write_output(
        out, record.der if der else record.pem.encode("ascii"), what=f"CRL #{record.number}"
    )
    output.note(
        f"CRL #{record.number} of CA {record.ca_id}: {record.entries} revoked, "
        f"next update {output.when(record.next_update)}"
    )


def _ca_id(pki: PkiService, given: str) -> str:
    roles = {role.value: role for role in CaRole}
    return pki.active_ca(roles[given]).ca_id if given in roles else given


def _serial(text: str) -> str:
    """`serial=4A3F...` (what `openssl x509 -serial` prints) or the bare hex."""
    return text.strip().removeprefix("serial=")


def _refuse_binary_to_terminal(out: Path | None) -> None:
    if out is None and sys.stdout.isatty():
        raise InvalidInput("cli.binary_to_terminal", "DER is binary: give --out FILE")
