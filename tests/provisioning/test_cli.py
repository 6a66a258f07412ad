"""The `enrollment` and factory provisioning commands, driven through Typer (as the lead
registers them in `cli/main.py`), on a SQLite data directory."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from devicetrust.cli import enrollment, factory_provisioning
from devicetrust.vault import generate_kek_text


@pytest.fixture
def cli(tmp_path: Path) -> tuple[typer.Typer, dict[str, str]]:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """root"""

    root.add_typer(enrollment.app, name="enrollment")
    factory = typer.Typer()
    factory.command("derive-key")(factory_provisioning.derive_key)
    factory.add_typer(factory_provisioning.manifest_app, name="manifest")
    root.add_typer(factory, name="factory")
    env = {"DEVICETRUST_DATA_DIR": str(tmp_path / "data"), "DEVICETRUST_KEK": generate_kek_text()}
    return root, env


def _run(cli: tuple[typer.Typer, dict[str, str]], *args: str) -> str:
    app, env = cli
    done = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return done.stdout


def test_group_key_shown_once_and_derive_key(cli: tuple[typer.Typer, dict[str, str]]) -> None:
    created = json.loads(
        _run(cli, "enrollment", "create-group", "line-03", "--symmetric-key", "--manual", "--json")
    )
    group_key = base64.urlsafe_b64decode(created["key"] + "=" * (-len(created["key"]) % 4))
    shown = json.loads(_run(cli, "enrollment", "show", "line-03", "--json"))
    assert shown["has_sealed_key"] and "key" not in shown
    pid = "c2c38155-b0d2-48b6-82fd-22fe3b316224"
    printed = _run(cli, "factory", "derive-key", "--group", "line-03", "--device", pid).strip()
    derived = base64.urlsafe_b64decode(printed + "=" * (-len(printed) % 4))
    assert derived == hmac.digest(group_key, pid.encode(), hashlib.sha256)
    _run(cli, "enrollment", "disable", "line-03")
    listed = json.loads(_run(cli, "enrollment", "list", "--json"))
    assert [e["enabled"] for e in listed] == [False]


def test_manifest_trust_and_import(cli: tuple[typer.Typer, dict[str, str]], tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from devicetrust.domain.ids import new_physical_id
    from devicetrust.provisioning.manifest import manifest_body, sign_manifest

    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "f1.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    _run(cli, "factory", "manifest", "trust", "f1", "--public-key", str(tmp_path / "f1.pub"))
    pid = new_physical_id()
    unit = {"physical_id": pid, "model": "arm", "hardware_serials": {}, "attestation": None}
    signed = sign_manifest(manifest_body("f1", "B1", [unit], datetime.now(UTC)), "f1", key)
    (tmp_path / "b1.json").write_bytes(signed)
    imported = json.loads(
        _run(cli, "factory", "manifest", "import", str(tmp_path / "b1.json"), "--manual", "--json")
    )
    assert imported == [pid]
