"""The CA from the command line, in a fresh folder, exactly as issue 3 documents it, judged by
the openssl CLI; and `devicetrust serve` publishing CRLs and answering `openssl ocsp`."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from cryptography import x509

from tests.cli.pki_steps import device_csr, initialise, ok, register, run
from tests.pki.company_pki import company_ca, encrypted_key, pem

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def test_the_documented_commands_work_as_written(cli: Cli) -> None:
    initialise(cli)
    ok(cli, "ca", "init")
    unit = register(cli)
    device_csr(cli, "device", f"/CN={unit}")
    ok(cli, "cert", "issue", "--csr", "device.csr", "--device", unit, "--out", "cert.pem")
    ok(cli, "ca", "chain", "--out", "chain.pem")
    verified = run(cli, "openssl", "verify", "-CAfile", "chain.pem", "cert.pem")
    assert verified.returncode == 0 and "cert.pem: OK" in verified.stdout, verified.stderr

    printed = run(cli, "openssl", "x509", "-in", "cert.pem", "-serial", "-noout").stdout
    serial = printed.strip().removeprefix("serial=")
    ok(cli, "cert", "revoke", "--serial", serial, "--reason", "keyCompromise")
    ok(cli, "crl", "--out", "crl.pem")
    checked = run(
        cli,
        "openssl",
        "verify",
        "-crl_check",
        "-CRLfile",
        "crl.pem",
        "-CAfile",
        "chain.pem",
        "cert.pem",
    )
    assert checked.returncode != 0
    assert "certificate revoked" in checked.stdout + checked.stderr

    shown = cli.json("cert", "show", serial)
    assert shown["revocation_reason"] == "keyCompromise" and shown["physical_id"] == unit
    leaf = x509.load_pem_x509_certificate((cli.cwd / "cert.pem").read_bytes())
    assert shown["serial"] == serial and int(serial, 16) == leaf.serial_number


def test_formats_serials_and_listing(cli: Cli) -> None:
    initialise(cli)
    ok(cli, "ca", "init", "--algorithm", "ecdsa-p384")
    cas = cli.json("ca", "show")["cas"]
    assert {(ca["role"], ca["algorithm"]) for ca in cas} == {
        ("root", "ecdsa-p384"),
        ("issuing", "ecdsa-p384"),
        ("manufacturing", "ecdsa-p384"),
    }
    unit = register(cli)
    device_csr(cli, "device", "/")
    issued = cli.json(
        "cert", "issue", "--csr", "device.csr", "--device", unit, "--profile", "birth"
    )
    assert issued["profile"] == "birth" and "BEGIN CERTIFICATE" in issued["pem"]
    serial = issued["serial"]
    ok(cli, "cert", "show", serial, "--der", "--out", "cert.der")
    parsed = run(cli, "openssl", "x509", "-inform", "DER", "-in", "cert.der", "-noout", "-serial")
    assert parsed.stdout.strip() == f"serial={serial}"
    ok(cli, "ca", "chain", "--role", "manufacturing", "--out", "birth-chain.pem")
    (cli.cwd / "cert.pem").write_text(issued["pem"])
    verified = run(cli, "openssl", "verify", "-CAfile", "birth-chain.pem", "cert.pem")
    assert verified.returncode == 0, verified.stderr

    # openssl's colon form, lower case: the same serial.
    colons = ":".join(serial[i : i + 2] for i in range(0, len(serial), 2)).lower()
    revoked = cli.json("cert", "revoke", "--serial", colons, "--reason", "superseded")
    assert [c["serial"] for c in revoked["revoked"]] == [serial]
    listed = cli.json("cert", "list", "--device", unit)["certificates"]
    assert [(c["serial"], c["revocation_reason"]) for c in listed] == [(serial, "superseded")]
    assert cli.json("cert", "list", "--device", unit, "--active")["certificates"] == []
    ok(cli, "crl", "--ca", "manufacturing", "--der", "--out", "crl.der")
    crl = x509.load_der_x509_crl((cli.cwd / "crl.der").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None


def test_import_a_company_root_then_rotate_intermediates_below_it(cli: Cli) -> None:
    initialise(cli)
    root, key = company_ca(datetime.now(UTC), "Example Motors Root", path_length=2)
    (cli.cwd / "company.pem").write_bytes(pem(root))
    (cli.cwd / "company.key").write_bytes(encrypted_key(key))
    cli.env["CA_KEY_PASSWORD"] = "company-transport-password"
    ok(
        cli,
        "ca",
        "import",
        "--cert",
        "company.pem",
        "--key",
        "company.key",
        "--key-password-env",
        "CA_KEY_PASSWORD",
        "--role",
        "root",
    )
    for role in ("issuing", "manufacturing"):
        ok(cli, "ca", "rotate-intermediate", "--role", role)
    ok(cli, "ca", "chain", "--out", "chain.pem")
    issuing, anchor = x509.load_pem_x509_certificates((cli.cwd / "chain.pem").read_bytes())
    assert anchor == root and issuing.issuer == root.subject
    unit = register(cli)
    device_csr(cli, "device", f"/CN={unit}")
    ok(cli, "cert", "issue", "--csr", "device.csr", "--device", unit, "--out", "cert.pem")
    verified = run(cli, "openssl", "verify", "-CAfile", "chain.pem", "cert.pem")
    assert verified.returncode == 0, verified.stderr
