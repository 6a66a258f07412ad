"""`devicetrust webhook`: the signing secret is printed once; list never shows it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.cli.conftest import Cli


def test_add_list_remove(kek_cli: Cli) -> None:
    cli = kek_cli
    added = cli.json(
        "webhook", "add", "https://mes.example.com/hooks", "--event", "device.*", "-e", "device.*"
    )
    assert added["secret"].startswith("whsec_")
    assert added["event_types"] == ["device.*"]
    listed = cli.json("webhook", "list")["webhooks"]
    assert [h["id"] for h in listed] == [added["id"]]
    assert "secret" not in listed[0]
    assert added["secret"].encode() not in cli.db_path.read_bytes()
    cli.ok("webhook", "remove", added["id"])
    assert cli.json("webhook", "list")["webhooks"] == []
    gone = cli("webhook", "remove", added["id"])
    assert gone.returncode == 4
    assert "[webhook.not_found]" in gone.stderr


def test_add_refuses_an_unknown_event_type(kek_cli: Cli) -> None:
    done = kek_cli("webhook", "add", "https://mes.example.com/hooks", "--event", "device.replace")
    assert done.returncode == 2
    assert "[webhook.unknown_event_type]" in done.stderr


def test_add_without_a_kek_says_how_to_get_one(cli: Cli) -> None:
    done = cli("webhook", "add", "https://mes.example.com/hooks")
    assert done.returncode == 6
    assert "[config.kek_missing]" in done.stderr
