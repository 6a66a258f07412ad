"""The files a Mosquitto broker of devicetrust reads, by name inside its config directory,
and the two that change at run time (CRL, ACL): rebuilt from the database, written
atomically, and followed by a reload (SIGHUP) of the broker whose pid file is in the
directory.

The ACL gives each device (username = certificate CN = physical id) write on its own
diagnostics and telemetry topics and read on its own feedback topic, nothing else; the
backend identity gets the whole device tree, its shared subscriptions and the dynamic
security control topic. Units that are suspended, quarantined or decommissioned and still
hold an unexpired certificate get a `topic deny #` entry, which Mosquitto checks before the
patterns: reloaded with SIGHUP, it silences such a unit at once, before its certificates
reach the CRL. Never writes a file a reader could see half-written.
"""

from __future__ import annotations

import grp
import json
import os
import signal
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from devicetrust.domain.errors import ConfigurationError
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.pki import CaRole, Profile
from devicetrust.store.database import Database
from devicetrust.store.models import (
    CertificateAuthorityRow,
    CrlRow,
    IssuedCertificateRow,
    PhysicalIdentityRow,
)

BACKEND_USER = "devicetrust-ingest"
SHARE_GROUP = "ingest"
BROKER_GROUP = "mosquitto"
# Units in these states may not use the data plane (their certificates are on hold or
# revoked by the AutoRevoker; the ACL denies them before that lands in the CRL).
DENIED_STATES = (DeviceState.SUSPENDED, DeviceState.QUARANTINED, DeviceState.DECOMMISSIONED)


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """Paths inside a broker config directory (see `docs/data-plane.md`)."""

    directory: Path

    def _p(self, name: str) -> Path:
        return self.directory / name

    @property
    def conf(self) -> Path:
        return self._p("mosquitto.conf")

    @property
    def device_cafile(self) -> Path:
        return self._p("ca.pem")

    @property
    def crlfile(self) -> Path:
        return self._p("crl.pem")

    @property
    def server_cert(self) -> Path:
        return self._p("server.pem")

    @property
    def server_key(self) -> Path:
        return self._p("server.key")

    @property
    def backend_cafile(self) -> Path:
        return self._p("backend-ca.pem")

    @property
    def ingest_cert(self) -> Path:
        return self._p("ingest.pem")

    @property
    def ingest_key(self) -> Path:
        return self._p("ingest.key")

    @property
    def acl(self) -> Path:
        return self._p("acl")

    @property
    def state_dir(self) -> Path:
        return self._p("state")

    @property
    def dynsec(self) -> Path:
        return self.state_dir / "dynamic-security.json"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "mosquitto.pid"

    @property
    def ingest_settings(self) -> Path:
        return self._p("ingest.json")


def broker_gid() -> int | None:
    """The `mosquitto` group when we are root (Mosquitto drops root to that user, so the
    files it reads must be readable by the group); None otherwise (same user)."""
    if os.geteuid() != 0:
        return None
    try:
        return grp.getgrnam(BROKER_GROUP).gr_gid
    except KeyError:
        return None


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, gid: int | None = None) -> bool:
    """Write `data` unless the file already holds it; True when it changed."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    if gid is not None:
        os.chown(tmp, -1, gid)
    os.replace(tmp, path)
    return True


# ---- trust material and access rules, from the database ---------------------------------


def device_ca_bundle(db: Database, now: datetime) -> str:
    """Every unexpired issuing CA (active and retired: what they issued stays valid) with
    the CAs above it, PEM, each certificate once. Read from the database: the ingest needs
    no CA key."""
    seen: dict[str, None] = {}
    with db.read() as session:
        cas = {row.id: row for row in session.execute(select(CertificateAuthorityRow)).scalars()}
    for ca in cas.values():
        if ca.role != CaRole.ISSUING.value or ca.not_after <= now:
            continue
        row: CertificateAuthorityRow | None = ca
        while row is not None:
            seen.setdefault(_pem(row.cert_der))
            for block in _pem_blocks(row.external_chain_pem or ""):
                seen.setdefault(block)
            row = cas.get(row.parent_id) if row.parent_id else None
    if not seen:
        raise ConfigurationError(
            "ingest.no_issuing_ca", "no issuing CA: run `devicetrust ca init` first"
        )
    return "".join(seen)


def crl_bundle(db: Database, now: datetime) -> str:
    """The latest CRL of every unexpired CA, PEM: Mosquitto checks the device certificate's
    issuer's CRL and refuses a certificate whose issuer has none."""
    with db.read() as session:
        ders = session.execute(
            select(CrlRow.der)
            .join(CertificateAuthorityRow, CertificateAuthorityRow.id == CrlRow.ca_id)
            .where(CertificateAuthorityRow.not_after > now)
            .order_by(CertificateAuthorityRow.created_at, CertificateAuthorityRow.id)
        ).scalars()
        return "".join(
            x509.load_der_x509_crl(der).public_bytes(Encoding.PEM).decode("ascii") for der in ders
        )


def _pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode("ascii")


def denied_units(db: Database, now: datetime) -> list[str]:
    """Units that may not use the data plane but still hold an unexpired device
    certificate (the others cannot complete a TLS handshake anyway)."""
    with db.read() as session:
        rows = session.execute(
            select(PhysicalIdentityRow.id)
            .where(
                PhysicalIdentityRow.state.in_([s.value for s in DENIED_STATES]),
                select(IssuedCertificateRow.id)
                .where(
                    IssuedCertificateRow.physical_id == PhysicalIdentityRow.id,
                    IssuedCertificateRow.profile == Profile.DEVICE.value,
                    IssuedCertificateRow.not_after > now,
                )
                .exists(),
            )
            .order_by(PhysicalIdentityRow.id)
        ).scalars()
        return list(rows)


def acl_text(topic_prefix: str, denied: list[str]) -> str:
    lines = [
        "# Written by devicetrust; rewritten when a unit is revoked. Do not edit.",
        f"user {BACKEND_USER}",
        f"topic readwrite {topic_prefix}/#",
        f"topic readwrite $share/{SHARE_GROUP}/{topic_prefix}/#",
        "topic readwrite $CONTROL/dynamic-security/#",
        "",
    ]
    for unit in denied:
        lines += [f"user {unit}", "topic deny #", ""]
    lines += [
        f"pattern write {topic_prefix}/%u/diagnostics",
        f"pattern write {topic_prefix}/%u/telemetry",
        f"pattern read {topic_prefix}/%u/feedback",
        "",
    ]
    return "\n".join(lines)


def refresh_runtime_files(
    db: Database, files: BrokerFiles, topic_prefix: str, now: datetime
) -> bool:
    """Rewrite the CRL and ACL files from the database; True when either changed."""
    gid = broker_gid()
    crl = write_atomic(files.crlfile, crl_bundle(db, now).encode("ascii"), gid=gid)
    denied = denied_units(db, now)
    acl = write_atomic(files.acl, acl_text(topic_prefix, denied).encode("ascii"), gid=gid)
    return crl or acl


def reload_broker(files: BrokerFiles) -> int:
    """SIGHUP the broker (it rereads the ACL and CRL files); returns its pid."""
    try:
        pid = int(files.pid_file.read_text(encoding="ascii").strip())
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            "ingest.broker_not_running", f"no usable pid file {files.pid_file}"
        ) from exc
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError as exc:
        raise ConfigurationError(
            "ingest.broker_not_running", f"no broker process {pid} ({files.pid_file})"
        ) from exc
    return pid


def _pem_blocks(text: str) -> list[str]:
    end = "-----END CERTIFICATE-----"
    return [part.strip() + f"\n{end}\n" for part in text.split(end) if part.strip()]


def read_ingest_settings(files: BrokerFiles) -> dict[str, object]:
    try:
        value = json.loads(files.ingest_settings.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(
            "ingest.config_missing",
            f"{files.ingest_settings} not found: run `devicetrust gateway mosquitto-config`",
        ) from exc
    if not isinstance(value, dict):
        raise ConfigurationError("ingest.config_invalid", f"{files.ingest_settings} is invalid")
    return value
