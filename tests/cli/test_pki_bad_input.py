"""Bad input to the CA commands: `error: ... [code]` on stderr, the error's exit status, and a
database that did not change."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devicetrust.vault import generate_kek_text
from tests.cli.pki_steps import device_csr, ok, register
from tests.pki.certs import ec_key, make_csr, tamper_signature
from tests.pki.company_pki import company_ca, encrypted_key, pem

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
UNKNOWN_ID = "c2c38155-b0d2-48b6-82fd-22fe3b316224"
UNKNOWN_SERIAL = "7F" + "00" * 18


@pytest.fixture(scope="module")
def template(
    tmp_path_factory: pytest.TempPathFactory, make_cli: Callable[[Path], Cli]
) -> tuple[Path, dict[str, str]]:
    """Built once per module: a CA, a unit with a certificate, and CSR files good and bad."""
    workdir = tmp_path_factory.mktemp("pki-template")
    cli = make_cli(workdir)
    cli.env["DEVICETRUST_KEK"] = generate_kek_text()
    ok(cli, "init")
    ok(cli, "ca", "init")
    unit = register(cli)
    device_csr(cli, "device", f"/CN={unit}")
    issued = cli.json("cert", "issue", "--csr", "device.csr", "--device", unit)
    files = {
        "garbage.csr": b"this is not a certificate request",
        "ca.csr": make_csr(ec_key(), ca=True),
        "weak.csr": make_csr(rsa.generate_private_key(65537, 1024)),
        "tampered.csr": tamper_signature(make_csr(ec_key())),
        "named.csr": make_csr(ec_key(), dns=["evil.example"]),
    }
    for name, data in files.items():
        (workdir / name).write_bytes(data)
    leaf, leaf_key = company_ca(datetime.now(UTC), "Not a CA", ca=False)
    (workdir / "leaf.pem").write_bytes(pem(leaf))
    (workdir / "leaf.key").write_bytes(encrypted_key(leaf_key))
    return workdir, {"unit": unit, "serial": issued["serial"], "kek": cli.env["DEVICETRUST_KEK"]}


CASES: list[tuple[str, list[str], int, str]] = [
    ("garbage CSR", ["cert", "issue", "--csr", "garbage.csr", "--device", "{unit}"], 2,
     "pki.csr_malformed"),
    ("CSR asking for CA:TRUE", ["cert", "issue", "--csr", "ca.csr", "--device", "{unit}"], 2,
     "pki.csr_forbidden_request"),
    ("CSR asking for a DNS name", ["cert", "issue", "--csr", "named.csr", "--device", "{unit}"],
     2, "pki.csr_forbidden_request"),
    ("RSA-1024 key", ["cert", "issue", "--csr", "weak.csr", "--device", "{unit}"], 2,
     "pki.weak_key"),
    ("bad CSR signature", ["cert", "issue", "--csr", "tampered.csr", "--device", "{unit}"], 2,
     "pki.csr_bad_signature"),
    ("unknown unit", ["cert", "issue", "--csr", "device.csr", "--device", UNKNOWN_ID], 4,
     "identity.physical_not_found"),
    ("missing CSR file", ["cert", "issue", "--csr", "nope.csr", "--device", "{unit}"], 2,
     "cli.file_unreadable"),
    ("unknown profile", ["cert", "issue", "--csr", "device.csr", "--device", "{unit}",
                         "--profile", "root"], 2, "pki.invalid_request"),
    ("unknown serial", ["cert", "revoke", "--serial", UNKNOWN_SERIAL, "--reason", "superseded"],
     4, "pki.certificate_not_found"),
    ("malformed serial", ["cert", "revoke", "--serial", "XY:Z0"], 2, "pki.invalid_serial"),
    ("unknown reason", ["cert", "revoke", "--serial", "{serial}", "--reason", "lost"], 2,
     "pki.invalid_reason"),
    ("serial and device", ["cert", "revoke", "--serial", "{serial}", "--device", "{unit}"], 2,
     "cli.conflicting_options"),
    ("revoke all of an unknown unit", ["cert", "revoke", "--device", UNKNOWN_ID], 4,
     "identity.physical_not_found"),
    ("show unknown serial", ["cert", "show", UNKNOWN_SERIAL], 4, "pki.certificate_not_found"),
    ("second ca init", ["ca", "init"], 5, "pki.hierarchy_exists"),
    ("rotate the root", ["ca", "rotate-intermediate", "--role", "root"], 2,
     "pki.invalid_request"),
    ("CRL of an unknown CA", ["crl", "--ca", UNKNOWN_ID], 4, "pki.ca_not_found"),
    ("import a leaf as CA", ["ca", "import", "--cert", "leaf.pem", "--key", "leaf.key",
                             "--key-password-env", "LEAF_PW", "--role", "issuing"], 2,
     "pki.ca_certificate_invalid"),
    ("import without a key", ["ca", "import", "--cert", "leaf.pem", "--role", "root"], 2,
     "cli.ca_key_missing"),
    ("import with an unset password variable",
     ["ca", "import", "--cert", "leaf.pem", "--key", "leaf.key", "--key-password-env", "UNSET",
      "--role", "root"], 2, "cli.key_password_missing"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused_and_changes_nothing(
    cli: Cli, template: tuple[Path, dict[str, str]], argv: list[str], status: int, code: str
) -> None:
    workdir, values = template
    shutil.copytree(workdir, cli.cwd, dirs_exist_ok=True)
    cli.env["DEVICETRUST_KEK"] = values["kek"]
    cli.env["LEAF_PW"] = "company-transport-password"
    before = cli.dump()
    done = cli(*(arg.format(**values) for arg in argv))
    assert done.returncode == status, done.stderr
    assert f"[{code}]" in done.stderr and done.stderr.startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    assert cli.dump() == before


def test_issuing_before_ca_init_says_what_to_do(cli: Cli) -> None:
    cli.env["DEVICETRUST_KEK"] = generate_kek_text()
    ok(cli, "init")
    unit = register(cli)
    (cli.cwd / "device.csr").write_bytes(make_csr(ec_key()))
    before = cli.dump()
    done = cli("cert", "issue", "--csr", "device.csr", "--device", unit)
    assert done.returncode == 5  # Conflict: the CA is not there yet
    assert "[pki.ca_not_initialised]" in done.stderr and "devicetrust ca init" in done.stderr
    assert cli.dump() == before
