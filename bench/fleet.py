"""Benchmark: the fleet simulator against the embedded server -- provisionings/s and durable
(stored, then acknowledged) messages/s -- next to raw paho-mqtt QoS 1 publishers on a
Mosquitto without a database, measured in the same run as the baseline.

    python bench/fleet.py                                   # 200 arms, 30 s, 2 + 5 msg/s each
    python bench/fleet.py --devices 500 --duration 60 --json

The fleet part is `devicetrust simulate --json` in a fresh data directory (SQLite, the
server in that process, each arm a real device client with its own mTLS connection, shards
of 120 arms per process). The baseline opens `--baseline-clients` paho connections (mTLS,
TLS 1.3, MQTT 5, 32 in flight each) to a Mosquitto started here on a free port, each
publishing `--baseline-messages` as fast as PUBACKs allow.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _support import mosquitto, paho_qos1_burst, write_key  # bench/_support.py
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from devicetrust.vault import generate_kek_text


def bench_fleet(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICETRUST_")}
    env["DEVICETRUST_KEK"] = generate_kek_text()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "devicetrust.cli.main", "simulate", "--devices",
         str(args.devices), "--lines", "4", "--duration", str(args.duration),
         "--rate-diagnostics", str(args.rate_diagnostics), "--rate-telemetry",
         str(args.rate_telemetry), "--json"],
        cwd=folder, env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"devicetrust simulate failed: {done.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(done.stdout)
    summary["wall_s"] = round(time.monotonic() - started, 1)
    return summary


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None,
                 signer: ec.EllipticCurvePrivateKey, *, ca: bool = False,
                 ip: str | None = None) -> x509.Certificate:
    """`issuer` None: self-signed."""
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip is not None:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    return builder.sign(signer, hashes.SHA256())


def bench_baseline(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Throw-away CA, server and client certificates; paho publishers to Mosquitto."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("bench CA", ca_key, None, ca_key, ca=True)
    (folder / "bundle.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("127.0.0.1", server_key, ca.subject, ca_key, ip="127.0.0.1")
    (folder / "server.pem").write_bytes(server.public_bytes(Encoding.PEM))
    write_key(folder / "server.key", server_key)
    clients = []
    for i in range(args.baseline_clients):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(f"unit-{i}", key, ca.subject, ca_key)
        (folder / f"client-{i}.pem").write_bytes(cert.public_bytes(Encoding.PEM))
        write_key(folder / f"client-{i}.key", key)
        clients.append((folder / f"client-{i}.pem", folder / f"client-{i}.key"))
    with mosquitto(folder, bundle=folder / "bundle.pem", cert=folder / "server.pem",
                   key=folder / "server.key") as port:
        results: list[dict[str, float]] = []
        threads = [threading.Thread(target=lambda c=c, i=i: results.append(
            _publish(port, folder / "bundle.pem", c, i, args.baseline_messages)))
            for i, c in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    acked = sum(int(r["acked"]) for r in results)
    span = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return {"clients": len(clients), "acked": acked, "msgs_per_s": round(acked / span)}


def _publish(port: int, bundle: Path, client_files: tuple[Path, Path], index: int,
             count: int) -> dict[str, float]:
    torque = [38.1, 51.7, 30.9, 12.2, 8.1, 4.0]
    payloads = [json.dumps({"seq": seq, "torque": torque}) for seq in range(count)]
    return paho_qos1_burst(port, cafile=str(bundle), certfile=str(client_files[0]),
                           keyfile=str(client_files[1]), client_id=f"unit-{index}",
                           topic=f"devices/unit-{index}/telemetry", payloads=payloads,
                           inflight=32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--rate-diagnostics", type=float, default=2.0)
    parser.add_argument("--rate-telemetry", type=float, default=5.0)
    parser.add_argument("--baseline-clients", type=int, default=50)
    parser.add_argument("--baseline-messages", type=int, default=2000, help="per client")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as fleet_dir:
        fleet = bench_fleet(args, Path(fleet_dir))
    with tempfile.TemporaryDirectory() as baseline_dir:  # Mosquitto's user must read it
        baseline = bench_baseline(args, Path(baseline_dir))
    offered = args.devices * (args.rate_diagnostics + args.rate_telemetry)
    report = {"devices": args.devices, "offered_msgs_per_s": offered, "fleet": fleet,
              "mosquitto_no_db": baseline}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.devices} simulated arms, {args.duration:.0f} s, offered {offered:.0f} msg/s "
          "(mTLS, TLS 1.3, MQTT 5, QoS 1)")
    print(f"  provisioning:  {fleet['provisioned_per_second']:>8} /s "
          f"({fleet['provisioned']} of {fleet['devices']}, HTTPS + CSR signed)")
    print(f"  fleet -> embedded server (SQLite): {fleet['acked_per_second']:>8} durable msgs/s "
          f"({fleet['acked']} acked of {fleet['published']}, ack p50/p99 "
          f"{fleet['ack_latency_p50_ms']}/{fleet['ack_latency_p99_ms']} ms)")
    print(f"  paho -> mosquitto (no database):   {baseline['msgs_per_s']:>8} msgs/s "
          f"({baseline['acked']} acked, {baseline['clients']} clients)")


if __name__ == "__main__":
    main()
