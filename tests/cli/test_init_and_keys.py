"""`devicetrust init` and `devicetrust apikey`: secrets are handed out once, never stored."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from devicetrust.vault import Vault

if TYPE_CHECKING:
    from tests.cli.conftest import Cli


def _files_contain(cli: Cli, needle: str) -> bool:
    return any(
        needle.encode() in path.read_bytes() for path in cli.cwd.rglob("*") if path.is_file()
    )


def test_init_prints_admin_key_and_kek_once_and_stores_neither(cli: Cli) -> None:
    done = cli.ok("init")
    kek = re.search(r"export DEVICETRUST_KEK=(\S+)", done.stdout)
    token = re.search(r"\b(dt_[0-9a-f]{12}_[A-Za-z0-9_-]{43})\b", done.stdout)
    assert kek is not None, done.stdout
    assert token is not None, done.stdout
    Vault.from_encoded(kek.group(1)).close()  # a well-formed KEK
    assert sorted(p.name for p in cli.data_dir.glob("*.db")) == ["devicetrust.db"]
    assert not _files_contain(cli, kek.group(1))
    # dt_<key id>_<secret>: the secret itself may contain "_", so split at most twice.
    assert not _files_contain(cli, token.group(1).split("_", 2)[2])

    keys = cli.json("apikey", "list")["api_keys"]
    assert [(k["name"], k["scopes"]) for k in keys] == [("bootstrap-admin", ["admin"])]
    assert "token" not in keys[0]

    again = cli.ok("init")
    assert "dt_" not in again.stdout
    assert "DEVICETRUST_KEK=" not in again.stdout
    assert len(cli.json("apikey", "list")["api_keys"]) == 1


def test_init_with_a_configured_kek_prints_no_new_one(kek_cli: Cli) -> None:
    report = kek_cli.json("init")
    assert report["initialised"] is True
    assert report["kek"] is None
    assert report["api_key"]["token"].startswith("dt_")


def test_init_refuses_a_malformed_kek(cli: Cli) -> None:
    done = cli("init", DEVICETRUST_KEK="too-short")
    assert done.returncode == 6
    assert "[config.invalid_kek]" in done.stderr
    assert "too-short" not in done.stderr


def test_apikey_create_list_revoke(cli: Cli) -> None:
    created = cli.json(
        "apikey", "create", "ci", "--scope", "identity:read", "--scope", "audit:read"
    )
    assert created["scopes"] == ["audit:read", "identity:read"]
    assert created["created_by"].startswith("cli:")
    listed = cli.json("apikey", "list")["api_keys"]
    assert [k["key_id"] for k in listed] == [created["key_id"]]
    assert "token" not in listed[0]
    revoked = cli.json("apikey", "revoke", created["key_id"])
    assert revoked["revoked_at"] is not None
    assert cli.json("apikey", "list", "--active")["api_keys"] == []
    again = cli("apikey", "revoke", created["key_id"])
    assert again.returncode == 5
    assert "[auth.key_already_revoked]" in again.stderr


def test_apikey_needs_a_scope(cli: Cli) -> None:
    done = cli("apikey", "create", "nothing")
    assert done.returncode == 2
    assert "[auth.no_scopes]" in done.stderr
