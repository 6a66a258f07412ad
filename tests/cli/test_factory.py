"""`devicetrust factory register`: physical identities are fresh CSPRNG UUIDv4s."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.cli.conftest import Cli


def test_register_prints_a_uuid4_and_records_the_unit(cli: Cli) -> None:
    unit = cli.json(
        "factory", "register", "--model", "RA-7", "--serial", "controller=CTL-1", "-s", "arm=A-9"
    )
    parsed = uuid.UUID(unit["physical_id"])
    assert parsed.version == 4
    assert str(parsed) == unit["physical_id"]
    assert unit["state"] == "manufactured"
    assert unit["hardware_serials"] == {"controller": "CTL-1", "arm": "A-9"}
    assert cli.json("device", "show", unit["physical_id"]) == unit


def test_batch_numbers_serials_and_gives_distinct_ids(cli: Cli) -> None:
    units = cli.json(
        "factory", "register", "--model", "RA-7", "--count", "12", "--serial", "arm=ARM-{n}"
    )
    assert len(units) == 12
    assert len({u["physical_id"] for u in units}) == 12
    assert all(uuid.UUID(u["physical_id"]).version == 4 for u in units)
    assert [u["hardware_serials"]["arm"] for u in units][:2] == ["ARM-01", "ARM-02"]
    listed = cli.json("device", "list", "--state", "manufactured")["units"]
    assert {u["physical_id"] for u in listed} == {u["physical_id"] for u in units}


def test_batch_refuses_serials_that_would_repeat(cli: Cli) -> None:
    done = cli("factory", "register", "--model", "RA-7", "--count", "3", "--serial", "arm=A-1")
    assert done.returncode == 2
    assert "error:" in done.stderr
    assert "[cli.invalid_serial]" in done.stderr


def test_malformed_serial_is_refused(cli: Cli) -> None:
    done = cli("factory", "register", "--model", "RA-7", "--serial", "no-equals-sign")
    assert done.returncode == 2
    assert "[cli.invalid_serial]" in done.stderr
    assert "Traceback" not in done.stderr
