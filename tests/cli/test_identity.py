"""Logical identities through the CLI: attributes, rename (old name still resolves), transfer,
unbind, and a unit's own history."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.cli.conftest import Cli


def test_identity_lifecycle(cli: Cli) -> None:
    first, second = (cli.json("factory", "register", "--model", "RA-7") for _ in range(2))
    created = cli.json("identity", "create", "cell-7", "--site", "plant-a", "--tag", "left")
    assert created["attributes"] == {"site": "plant-a", "tags": ["left"]}
    updated = cli.json("identity", "update", "cell-7", "--role", "welding", "--unset", "site")
    assert updated["attributes"] == {"tags": ["left"], "role": "welding"}

    cli.ok("identity", "bind", "cell-7", first["physical_id"])
    renamed = cli.json("identity", "rename", "cell-7", "cell-8")
    assert renamed["name"] == "cell-8"
    assert renamed["former_names"] == ["cell-7"]
    # The old name still resolves during the grace period.
    shown = cli.json("identity", "show", "cell-7")
    assert shown["name"] == "cell-8"
    assert shown["holder"]["physical_id"] == first["physical_id"]

    cli.ok("identity", "transfer", "cell-8", second["physical_id"])
    cli.ok("identity", "unbind", "cell-8", "--reason", "line stopped")
    history = cli.json("identity", "history", "cell-8")["bindings"]
    assert [b["physical_id"] for b in history] == [first["physical_id"], second["physical_id"]]
    assert [b["name_at_start"] for b in history] == ["cell-7", "cell-8"]
    assert history[-1]["end_reason"] == "line stopped"

    held = cli.json("device", "history", first["physical_id"])["bindings"]
    assert [b["logical_name"] for b in held] == ["cell-8"]
    listed = cli.json("identity", "list")["identities"]
    assert [(i["name"], i["physical_id"]) for i in listed] == [("cell-8", None)]
    # The former holder stays live (provisioned), free to take another identity.
    assert cli.json("device", "show", first["physical_id"])["state"] == "provisioned"
