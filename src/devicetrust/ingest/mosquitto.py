"""`write_mosquitto_config`: a complete Mosquitto 2 configuration for devicetrust's devices.

    device listener   TLS 1.3 only, a client certificate from the devicetrust issuing CA is
                      required; username = certificate CN = physical id, and the client id
                      is forced to it (one device cannot take over another's session);
                      the CRL of every CA is checked at each handshake.
    backend listener  TLS 1.3, only certificates of a private backend CA created here: the
                      ingest workers' identity. The backend CA's key is discarded once the
                      ingest certificate is signed, so no one can mint another backend
                      identity; rerunning the command replaces it.
    ACL file          per-device topics (see `broker_files.acl_text`), deny entries for
                      units that may not connect.
    dynamic security  the plugin, with the backend identity as its admin: `disableClient`
                      is the only way to drop a live session in Mosquitto 2.0 (a CRL reload
                      does not touch connected clients).

The server certificate is issued by the devicetrust CA (server profile) for the given names;
its key is created here and never leaves the directory. Files the broker reads are readable
by the `mosquitto` group when run as root; the `state/` directory (pid file, dynamic
security state, persistence) is the broker's. An existing dynamic security file is kept:
it holds the live disable state.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devicetrust.domain.errors import ConfigurationError, InvalidInput
from devicetrust.ingest.broker_files import (
    BACKEND_USER,
    BrokerFiles,
    broker_gid,
    device_ca_bundle,
    refresh_runtime_files,
    write_atomic,
)
from devicetrust.pki import PkiService, Profile

PLUGIN_CANDIDATES = (
    Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/mosquitto_dynamic_security.so"),
    Path("/usr/local/lib/mosquitto_dynamic_security.so"),
)
ADMIN_ROLE = "devicetrust-admin"
BACKEND_CERT_LIFETIME = timedelta(days=397)


@dataclass(frozen=True, slots=True)
class BrokerPlan:
    """Where the broker listens and what its certificate names."""

    host: str = "0.0.0.0"  # noqa: S104 - devices connect from the network
    port: int = 8883
    backend_host: str = "127.0.0.1"
    backend_port: int = 8884
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    topic_prefix: str = "devices"
    plugin: Path | None = None  # default: found among PLUGIN_CANDIDATES
    max_payload_bytes: int = 64 * 1024
    extra: tuple[str, ...] = field(default=())  # more mosquitto.conf lines (e.g. logging)


@dataclass(frozen=True, slots=True)
class WrittenConfig:
    files: BrokerFiles
    server_serial: str
    server_not_after: datetime
    plugin: Path


def find_plugin(given: Path | None = None) -> Path:
    for candidate in (given,) if given is not None else PLUGIN_CANDIDATES:
        if candidate is not None and candidate.is_file():
            return candidate
    raise ConfigurationError(
        "ingest.dynsec_plugin_missing",
        "mosquitto_dynamic_security.so not found (apt-get install mosquitto); "
        "name it with --plugin",
    )


def write_mosquitto_config(
    pki: PkiService, plan: BrokerPlan, directory: Path, *, actor: str
) -> WrittenConfig:
    """Write (or refresh) the broker configuration in `directory`."""
    if not plan.dns_names and not plan.ip_addresses:
        raise InvalidInput("ingest.no_server_name", "give the broker a DNS name or an IP address")
    ips = [str(ipaddress.ip_address(ip)) for ip in plan.ip_addresses]
    if _is_ip(plan.backend_host) and plan.backend_host not in ips:
        ips.append(plan.backend_host)  # the ingest checks the name it connects to
    plan = replace(plan, ip_addresses=tuple(ips))
    plugin = find_plugin(plan.plugin)
    files = BrokerFiles(directory.resolve())
    gid = broker_gid()
    files.directory.mkdir(parents=True, exist_ok=True)
    os.chmod(files.directory, 0o750 if gid is not None else 0o755)
    if gid is not None:
        os.chown(files.directory, -1, gid)
    _prepare_state_dir(files)
    now = pki.clock.now()

    write_atomic(files.device_cafile, device_ca_bundle(pki.database, now).encode("ascii"), gid=gid)
    server = _server_identity(pki, plan, actor)
    cert_pem, key_pem = server
    write_atomic(files.server_cert, cert_pem.encode("ascii"), gid=gid)
    write_atomic(files.server_key, key_pem, mode=0o640 if gid is not None else 0o600, gid=gid)
    backend_ca, ingest_cert, ingest_key = _backend_identity(now)
    write_atomic(files.backend_cafile, backend_ca, gid=gid)
    write_atomic(files.ingest_cert, ingest_cert)
    write_atomic(files.ingest_key, ingest_key, mode=0o600)
    refresh_runtime_files(pki.database, files, plan.topic_prefix, now)
    if not files.dynsec.exists():
        write_atomic(files.dynsec, _dynsec_initial(), mode=0o600)
        _give_to_broker(files.dynsec)
    write_atomic(files.conf, _conf(files, plan, plugin).encode("ascii"), gid=gid)
    settings = {
        "backend_host": plan.backend_host,
        "backend_port": plan.backend_port,
        "topic_prefix": plan.topic_prefix,
        "max_payload_bytes": plan.max_payload_bytes,
    }
    write_atomic(files.ingest_settings, json.dumps(settings, indent=2).encode("utf-8"))
    certificate = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    return WrittenConfig(
        files=files,
        server_serial=format(certificate.serial_number, "X"),
        server_not_after=certificate.not_valid_after_utc,
        plugin=plugin,
    )


def _prepare_state_dir(files: BrokerFiles) -> None:
    files.state_dir.mkdir(exist_ok=True)
    os.chmod(files.state_dir, 0o750)  # noqa: S103 - the broker's own directory, no secrets
    _give_to_broker(files.state_dir)


def _give_to_broker(path: Path) -> None:
    """The broker writes here (dynamic security saves, pid file) after dropping root."""
    if broker_gid() is not None:
        shutil.chown(path, user="mosquitto", group="mosquitto")


def _server_identity(pki: PkiService, plan: BrokerPlan, actor: str) -> tuple[str, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    first = plan.dns_names[0] if plan.dns_names else plan.ip_addresses[0]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first[:64])]))
        .sign(key, hashes.SHA256())
    )
    issued = pki.issue_from_csr(
        csr.public_bytes(serialization.Encoding.PEM),
        None,
        Profile.SERVER,
        actor=actor,
        dns_names=plan.dns_names,
        ip_addresses=plan.ip_addresses,
    )
    chain = pki.chain_pem_of(issued.issuer_ca_id)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),  # Mosquitto cannot prompt for a key password
    )
    return issued.pem + chain, key_pem


def _backend_identity(now: datetime) -> tuple[bytes, bytes, bytes]:
    """A private CA certifying one client certificate (CN `devicetrust-ingest`); the CA
    key is dropped when this returns."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devicetrust backend CA")])
    start = now - timedelta(minutes=5)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + BACKEND_CERT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BACKEND_USER)]))
        .issuer_name(ca_name)
        .public_key(client_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + BACKEND_CERT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        ca.public_bytes(pem),
        client.public_bytes(pem),
        client_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def _dynsec_initial() -> bytes:
    """Dynamic security state: the backend identity as admin; everything else denied by
    default (the ACL file decides topic access first; see docs/data-plane.md)."""
    control = "$CONTROL/dynamic-security/#"
    state = {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [
            {
                "username": BACKEND_USER,
                "textname": "devicetrust ingest",
                "roles": [{"rolename": ADMIN_ROLE}],
            }
        ],
        "groups": [],
        "roles": [
            {
                "rolename": ADMIN_ROLE,
                "acls": [
                    {"acltype": "publishClientSend", "topic": control, "allow": True},
                    {"acltype": "publishClientReceive", "topic": control, "allow": True},
                    {"acltype": "subscribePattern", "topic": control, "allow": True},
                ],
            }
        ],
    }
    return json.dumps(state, indent=2).encode("utf-8")


def _conf(files: BrokerFiles, plan: BrokerPlan, plugin: Path) -> str:
    # A packet carries the payload plus topic and properties; allow 4 KiB for those.
    max_packet = plan.max_payload_bytes + 4096
    lines = [
        "# Written by `devicetrust gateway mosquitto-config`. Rerun it rather than editing.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"acl_file {files.acl}",
        f"plugin {plugin}",
        f"plugin_opt_config_file {files.dynsec}",
        f"pid_file {files.pid_file}",
        "persistence true",
        f"persistence_location {files.state_dir}/",
        "autosave_interval 60",
        f"max_packet_size {max_packet}",
        # Per-client queue beyond the in-flight window: the ingest sessions buffer here while
        # workers are slow or away; Mosquitto drops (and logs) what exceeds it.
        "max_queued_messages 1000000",
        "max_queued_bytes 0",
        "max_inflight_messages 1000",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages true",
        "",
        "# Devices: mutual TLS 1.3 with a devicetrust device certificate.",
        f"listener {plan.port} {plan.host}",
        "tls_version tlsv1.3",
        f"cafile {files.device_cafile}",
        f"crlfile {files.crlfile}",
        f"certfile {files.server_cert}",
        f"keyfile {files.server_key}",
        "require_certificate true",
        "use_identity_as_username true",
        "use_username_as_clientid true",
        "",
        "# Backend: devicetrust ingest workers (private backend CA).",
        f"listener {plan.backend_port} {plan.backend_host}",
        "tls_version tlsv1.3",
        f"cafile {files.backend_cafile}",
        f"certfile {files.server_cert}",
        f"keyfile {files.server_key}",
        "require_certificate true",
        "use_identity_as_username true",
        *plan.extra,
        "",
    ]
    return "\n".join(lines)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
