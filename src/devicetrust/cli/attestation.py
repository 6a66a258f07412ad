"""`devicetrust attestation`: golden measurements (known-good SHA-256 PCR values, by name) and
what each unit's TPM quotes proved about its boot.

A golden measurement comes from `--pcr I=HEX` values, from a file — the output of
`tpm2_pcrread sha256:0,1,...` (tpm2-tools) or a JSON map `{"0": "<hex>"}` — or from the
latest verified quote of a reference unit (`--from-unit`). Every check, write and audit entry
is the attestation service's; this module only reads input and prints.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from devicetrust.attestation import BootAttestation, GoldenMeasurement, parse_pcrs, parse_selection
from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.domain.errors import InvalidInput

MAX_FILE = 64 * 1024  # a full tpm2_pcrread of four banks is under 8 KiB
PID = "c2c38155-b0d2-48b6-82fd-22fe3b316224"

app = typer.Typer(
    help="Measured boot: golden measurements and the units' verified boot attestations.",
    no_args_is_help=True,
    epilog=output.example(
        "tpm2_pcrread sha256:0,1,2,3,4,5,6,7 > fw-2.4.1.pcrs",
        "devicetrust attestation golden add arm-fw-2.4.1 --from-file fw-2.4.1.pcrs",
        f"devicetrust attestation show {PID}",
    ),
)
golden_app = typer.Typer(
    help="Golden measurements: the PCR values of boot chains known to be good.",
    no_args_is_help=True,
    epilog=output.example(
        "devicetrust attestation golden list --all",
        "devicetrust attestation golden add arm-fw-2.4.1 \\",
        f"  --from-unit {PID}",
    ),
)
app.add_typer(golden_app, name="golden")


def _hex(value: Any) -> Any:
    """`0x3D45...` (tpm2-tools) as plain hex; anything else is left for `parse_pcrs` to judge."""
    if isinstance(value, str):
        text = value.strip()
        return text[2:] if text[:2].lower() == "0x" else text
    return value


def parse_pcr_file(text: str) -> dict[str, Any]:
    """The SHA-256 bank of `tpm2_pcrread` output (`  sha256:` then `    0 : 0x3D45...`), or a
    JSON map `{"0": "<hex>"}` (also `{"sha256": {...}}`), as `{"0": "<hex>"}`; other banks are
    ignored. Refuses anything else with `attestation.invalid_pcr_file`."""
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise InvalidInput("attestation.invalid_pcr_file", f"not JSON: {exc}") from exc
        bank = document.get("sha256", document) if isinstance(document, dict) else None
        if not isinstance(bank, Mapping):
            raise InvalidInput("attestation.invalid_pcr_file", 'expected {"0": "<hex>", ...}')
        return {str(k): _hex(v) for k, v in bank.items()}
    bank_name: str | None = None
    found: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        head, sep, value = (part.strip() for part in stripped.partition(":"))
        if not sep or not head:
            raise InvalidInput(
                "attestation.invalid_pcr_file",
                f"line {number}: expected `sha256:` or `<pcr> : 0x<hex>` (tpm2_pcrread output)",
            )
        if not value:
            bank_name = head.lower()
        elif bank_name is None:
            raise InvalidInput("attestation.invalid_pcr_file", f"line {number}: PCR before a bank")
        elif bank_name == "sha256":
            if head in found:
                raise InvalidInput("attestation.invalid_pcr_file", f"PCR {head} given twice")
            found[head] = _hex(value)
    if not found:
        raise InvalidInput("attestation.invalid_pcr_file", "no sha256 bank with PCR values")
    return found


def _read(source: str) -> str:
    """The file `source`, or stdin for `-`, at most `MAX_FILE` bytes."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_FILE + 1)
        else:
            with Path(source).open("rb") as handle:
                data = handle.read(MAX_FILE + 1)
    except OSError as exc:
        raise InvalidInput("cli.file_unreadable", f"cannot read {source}: {exc.strerror}") from exc
    if len(data) > MAX_FILE:
        raise InvalidInput("cli.file_too_large", f"{source} is over {MAX_FILE} bytes")
    return data.decode("utf-8", errors="replace")


def _pcr_options(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        index, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not index:
            raise InvalidInput("attestation.invalid_pcrs", f"--pcr takes I=HEX, got {pair[:80]!r}")
        values[index] = _hex(value)
    return values


def _measured(pairs: list[str], from_file: str | None, select: str | None) -> dict[int, bytes]:
    """The file's values, overridden by `--pcr`, kept to `--select` when given."""
    raw = parse_pcr_file(_read(from_file)) if from_file is not None else {}
    raw.update(_pcr_options(pairs))
    pcrs = parse_pcrs(raw, "--from-file/--pcr")
    if select is None:
        return pcrs
    chosen = parse_selection(select.split(","), "--select")
    missing = [str(i) for i in chosen if i not in pcrs]
    if missing:
        raise InvalidInput("attestation.invalid_pcrs", f"no value for PCR {','.join(missing)}")
    return {i: pcrs[i] for i in chosen}


def _golden_rows(goldens: list[GoldenMeasurement]) -> list[tuple[Any, ...]]:
    return [
        (
            g.name,
            "active" if g.active else "revoked",
            ",".join(str(i) for i in sorted(g.pcrs)),
            g.created_at,
            g.created_by,
            g.note if g.active else f"revoked by {g.revoked_by}: {g.revoke_reason}",
        )
        for g in goldens
    ]


def _show_goldens(goldens: list[GoldenMeasurement], title: str) -> None:
    output.table(title, ["name", "status", "PCRs", "added", "by", "note"], _golden_rows(goldens))


def _show_values(golden: GoldenMeasurement) -> None:
    output.table(None, ["PCR", "SHA-256"], [(i, golden.pcrs[i].hex()) for i in sorted(golden.pcrs)])


@golden_app.command(
    "add",
    epilog=output.example(
        "tpm2_pcrread sha256:0,1,2,3,4,5,6,7 > fw-2.4.1.pcrs",
        "devicetrust attestation golden add arm-fw-2.4.1 --from-file fw-2.4.1.pcrs \\",
        "  --note 'KUKA controller firmware 2.4.1'",
        "tpm2_pcrread sha256:0,7 | devicetrust attestation golden add \\",
        "  arm-fw-2.4.1-secure-boot --from-file -",
        "devicetrust attestation golden add bench-rig --pcr 0=<hex> --pcr 7=<hex>",
        "devicetrust attestation golden add arm-fw-2.4.2 \\",
        f"  --from-unit {PID}",
    ),
)
def golden_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Its name (never reused), e.g. arm-fw-2.4.1.")],
    pcr: Annotated[
        list[str] | None,
        typer.Option("--pcr", help="A SHA-256 PCR value, I=HEX (repeat; overrides the file)."),
    ] = None,
    from_file: Annotated[
        str | None,
        typer.Option(
            "--from-file",
            help='tpm2_pcrread output or a JSON map {"0": "<hex>"}; \'-\' is stdin.',
        ),
    ] = None,
    select: Annotated[
        str | None,
        typer.Option("--select", help="Keep only these PCRs of the values given, e.g. 0-7."),
    ] = None,
    from_unit: Annotated[
        str | None,
        typer.Option("--from-unit", help="A reference unit's physical id: its latest quote."),
    ] = None,
    note: Annotated[str, typer.Option("--note", help="What boot chain this is.")] = "",
    as_json: output.JsonFlag = False,
) -> None:
    """Add a golden measurement: boots whose quoted PCRs hold these values are good."""
    cli = state(ctx)
    if from_unit is not None:
        if pcr or from_file is not None or select is not None:
            raise InvalidInput(
                "cli.conflicting_options", "--from-unit takes no --pcr, --from-file or --select"
            )
        golden = cli.platform().attestation.golden_from_unit(
            name, from_unit, note=note, actor=cli.actor
        )
    else:
        if not pcr and from_file is None:
            raise InvalidInput(
                "attestation.invalid_pcrs", "give --pcr I=HEX, --from-file or --from-unit"
            )
        values = _measured(pcr or [], from_file, select)
        golden = cli.platform().attestation.add_golden(name, values, note=note, actor=cli.actor)
    if as_json:
        output.emit_json(golden.to_json())
        return
    output.success(f"Golden measurement {golden.name} added (PCRs {_list(golden.pcrs)}).")
    _show_values(golden)


def _list(pcrs: Mapping[int, bytes]) -> str:
    return ",".join(str(i) for i in sorted(pcrs))


@golden_app.command(
    "list",
    epilog=output.example(
        "devicetrust attestation golden list", "devicetrust attestation golden list --all --json"
    ),
)
def golden_list(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="Also revoked ones.")] = False,
    as_json: output.JsonFlag = False,
) -> None:
    """List golden measurements by name (active ones unless --all)."""
    goldens = state(ctx).platform().attestation.goldens(include_revoked=show_all)
    if as_json:
        output.emit_json([g.to_json() for g in goldens])
    else:
        _show_goldens(goldens, "Golden measurements")


@golden_app.command(
    "revoke",
    epilog=output.example(
        "devicetrust attestation golden revoke arm-fw-2.4.1 \\",
        "  --reason 'boot loader CVE-2026-1234, fixed in 2.4.2'",
    ),
)
def golden_revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The golden measurement's name.")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required; kept in the audit log).")
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Stop accepting a golden measurement (kept, so old verdicts keep their meaning)."""
    cli = state(ctx)
    revoked = cli.platform().attestation.revoke_golden(name, reason=reason or "", actor=cli.actor)
    if as_json:
        output.emit_json(revoked.to_json())
    else:
        output.warn(f"Golden measurement {revoked.name} revoked: boots it alone matched now fail.")


def _show_attestations(physical_id: str, found: list[BootAttestation]) -> None:
    output.table(
        f"Boot attestations of {physical_id} (newest first)",
        ["attested", "verdict", "golden", "PCRs", "detail"],
        [(a.attested_at, a.verdict.value, a.golden, _list(a.pcrs), a.detail) for a in found],
    )


@app.command(
    "show",
    epilog=output.example(
        f"devicetrust attestation show {PID}",
        f"devicetrust attestation show {PID} --json",
        "devicetrust attestation show --limit 1 <physical id>",
    ),
)
def show(
    ctx: typer.Context,
    physical_id: Annotated[str, typer.Argument(help="The unit's physical id.")],
    limit: Annotated[int, typer.Option("--limit", help="At most this many (1-1000).")] = 20,
    as_json: output.JsonFlag = False,
) -> None:
    """A unit's verified boot attestations and their verdicts, newest first."""
    found = state(ctx).platform().attestation.history(physical_id, limit=limit)
    if as_json:
        output.emit_json([a.to_json() for a in found])
        return
    if not found:
        output.note(f"Unit {physical_id} has not attested its boot yet.")
        return
    _show_attestations(found[0].physical_id, found)
