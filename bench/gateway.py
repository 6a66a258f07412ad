"""Benchmark: durable QoS 1 messages/s through the embedded device gateway, next to Mosquitto
(TLS 1.3, no database) in the same run as the baseline.

    python bench/gateway.py                                  # 4 paho publishers x 5,000
    python bench/gateway.py --publishers 8 --messages 10000 --backend postgres
    python bench/gateway.py --driver mosquitto_pub           # C clients (mosquitto_pub -l)

Everything is real: a CA hierarchy, device certificates of registered active units, mTLS,
the device-auth service, and the ingest message store as the sink (SQLite file or a fresh
PostgreSQL database): a PUBACK means the message is committed. Each publisher is its own
process (the Python client is the bottleneck otherwise); the rate is all messages over the
time from the first publisher's first PUBLISH to the last one's last PUBACK. At the end the
stored rows are counted: every acknowledged message must be in the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _support import (  # bench/_support.py
    BenchDevice,
    csr,
    database,
    enroll_devices,
    mosquitto,
    paho_qos1_burst,
    write_key,
)
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from devicetrust.deviceauth import DeviceAuthService, device_verifier
from devicetrust.domain.clock import SystemClock
from devicetrust.gateway import (
    ACCEPTED,
    DeviceMessage,
    Gateway,
    GatewayConfig,
    GatewayThread,
    IngestSink,
    SinkResult,
    server_tls_context,
)
from devicetrust.identity import IdentityService
from devicetrust.ingest.store import MessageStore
from devicetrust.pki import Keyring, PkiService, Profile
from devicetrust.pki.keys import KekPassword
from devicetrust.store.database import Database
from devicetrust.store.migrate import upgrade
from devicetrust.store.models_data_plane import DeviceMessageRow
from devicetrust.vault import Vault

ACTOR = "operator:bench"


def build_pki(db: Database, tmp: Path, vault: Vault, publishers: int) -> tuple[
        PkiService, list[BenchDevice]]:
    """A CA hierarchy, a server certificate for 127.0.0.1 (server.pem, server.key, the
    client bundle bundle.pem, the devices' trust root.pem) and `publishers` active units
    holding `bench-arm-NNN`, each with a device certificate."""
    clock = SystemClock()
    keyring = Keyring(tmp / "ca", password=KekPassword(vault))
    pki = PkiService(db, clock, keyring)
    hierarchy = pki.init_hierarchy(actor=ACTOR)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = pki.issue_from_csr(csr(server_key), None, Profile.SERVER, actor=ACTOR,
                                dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    (tmp / "root.pem").write_text(hierarchy.root.pem)
    (tmp / "server.pem").write_text(server.pem + hierarchy.issuing.pem)
    write_key(tmp / "server.key", server_key)
    (tmp / "bundle.pem").write_text(hierarchy.root.pem + hierarchy.issuing.pem)
    names = [f"bench-arm-{n:03d}" for n in range(publishers)]
    devices = enroll_devices(IdentityService(db, clock), pki, tmp, publishers, actor=ACTOR,
                             names=names)
    return pki, devices


# ---- one publisher process ------------------------------------------------------------------


def publish_paho(port: int, cafile: str, pub: BenchDevice, n: int, tag: str) -> dict[str, float]:
    payloads = [json.dumps({"run": tag, "seq": i, "torque": [1.5, 2.5, 3.5]}) for i in range(n)]
    return paho_qos1_burst(port, cafile=cafile, certfile=str(pub.cert), keyfile=str(pub.key),
                           client_id=pub.physical_id,
                           topic=f"devices/{pub.physical_id}/telemetry", payloads=payloads)


def publish_c_client(port: int, cafile: str, pub: BenchDevice, n: int,
                     tag: str) -> dict[str, float]:
    lines = "".join(json.dumps({"run": tag, "seq": i, "torque": [1.5, 2.5]}) + "\n"
                    for i in range(n))
    started = time.time()
    done = subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv5", "-q", "1",
         "-i", pub.physical_id, "--cafile", cafile, "--cert", str(pub.cert), "--key",
         str(pub.key), "-t", f"devices/{pub.physical_id}/telemetry", "-l"],
        input=lines, text=True, capture_output=True, check=False)
    ended = time.time()
    return {"started": started, "ended": ended, "acked": n if done.returncode == 0 else 0}


def run_publishers(args: argparse.Namespace, port: int, tmp: Path, pubs: list[BenchDevice],
                   tag: str) -> dict[str, float]:
    """Start one process per publisher; the rate over the union of their active times."""
    procs = [subprocess.Popen(
        [sys.executable, __file__, "--child", args.driver, str(port), str(tmp / "root.pem"),
         p.physical_id, str(p.cert), str(p.key), str(args.messages), tag],
        stdout=subprocess.PIPE, text=True) for p in pubs]
    results = [json.loads(proc.communicate()[0]) for proc in procs]
    start = min(r["started"] for r in results)
    end = max(r["ended"] for r in results)
    acked = sum(r["acked"] for r in results)
    return {"acked": acked, "seconds": round(end - start, 3),
            "msgs_per_s": round(acked / (end - start)),
            "publisher_seconds": sorted(round(r["ended"] - r["started"], 2) for r in results)}


class NullSink:
    """Stores nothing (`--sink null`): the gateway's own ceiling, without the database."""

    async def store(self, messages: Sequence[DeviceMessage]) -> list[SinkResult]:
        return [ACCEPTED] * len(messages)


# ---- the two servers ----------------------------------------------------------------------


def bench_gateway(args: argparse.Namespace, url: str, tmp: Path) -> dict[str, Any]:
    db = Database(url)
    upgrade(db)
    clock = SystemClock()
    with Vault.from_key(os.urandom(32)) as vault:
        pki, pubs = build_pki(db, tmp, vault, args.publishers)
        auth = DeviceAuthService(db, clock, vault, cert_verifier=device_verifier(pki, clock))
        store = MessageStore(db, clock)
        context = server_tls_context(tmp / "server.pem", tmp / "server.key",
                                     tmp / "bundle.pem")
        sink: IngestSink | NullSink = IngestSink(store) if args.sink == "ingest" else NullSink()
        config = GatewayConfig(port=0, message_rate=None,
                               store_concurrency=getattr(args, "store_concurrency", 2))
        gateway = Gateway(config, tls=context, authenticator=auth, sink=sink, clock=clock)
        factory = asyncio.new_event_loop if getattr(args, "loop", "auto") == "asyncio" else None
        thread = (GatewayThread(gateway) if factory is None
                  else GatewayThread(gateway, loop_factory=factory))
        with thread as running:
            cpu = time.process_time()
            result = run_publishers(args, running.port, tmp, pubs, "gateway")
            cpu = time.process_time() - cpu  # this process: the gateway and its store threads
            counters = running.counters()
        with db.read() as session:
            stored = session.scalar(select(func.count()).select_from(DeviceMessageRow))
        pki.close()
    db.dispose()
    result["stored_rows"] = int(stored or 0)
    result["server_cpu_us_per_msg"] = round(cpu / max(result["acked"], 1) * 1e6, 1)
    batches = counters["devicetrust_gateway_store_batches_total"]
    result["mean_batch"] = round(counters["devicetrust_gateway_messages_stored_total"]
                                 / max(batches, 1), 1)
    return {**result, "pubs": pubs}


def bench_mosquitto(args: argparse.Namespace, tmp: Path,
                    pubs: list[BenchDevice]) -> dict[str, Any]:
    with mosquitto(tmp, bundle=tmp / "bundle.pem", cert=tmp / "server.pem",
                   key=tmp / "server.key") as port:
        return run_publishers(args, port, tmp, pubs, "mosquitto")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--messages", type=int, default=5000, help="per publisher")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sink", choices=["ingest", "null"], default="ingest")
    parser.add_argument("--driver", choices=["paho", "mosquitto_pub"], default="paho")
    parser.add_argument("--store-concurrency", type=int, default=2,
                        help="batches in the sink at once (GatewayConfig.store_concurrency)")
    parser.add_argument("--loop", choices=["auto", "asyncio"], default="auto",
                        help="auto: uvloop when installed (as `devicetrust serve`)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=8, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        driver, port, cafile, pid, cert, key, n, tag = args.child
        publish = publish_paho if driver == "paho" else publish_c_client
        device = BenchDevice(pid, Path(cert), Path(key), "")
        print(json.dumps(publish(int(port), cafile, device, int(n), tag)))
        return
    with tempfile.TemporaryDirectory() as name, database(args.backend) as url:
        tmp = Path(name)
        gateway = bench_gateway(args, url, tmp)
        pubs = gateway.pop("pubs")
        mosquitto = bench_mosquitto(args, tmp, pubs)
    total = args.publishers * args.messages
    report = {"publishers": args.publishers, "messages": total, "driver": args.driver,
              "backend": args.backend, "gateway_durable": gateway, "mosquitto_no_db": mosquitto}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"QoS 1, {total} messages from {args.publishers} {args.driver} publishers (mTLS, "
          f"TLS 1.3), MQTT 5")
    target = args.backend if args.sink == "ingest" else "null sink"
    print(f"  devicetrust gateway -> {target}: {gateway['msgs_per_s']:>8} msgs/s "
          f"({gateway['acked']} acked, {gateway['stored_rows']} rows stored, "
          f"{gateway['mean_batch']} messages per commit, "
          f"{gateway['server_cpu_us_per_msg']} us of gateway CPU per message)")
    print(f"  mosquitto (no database): {mosquitto['msgs_per_s']:>8} msgs/s "
          f"({mosquitto['acked']} acked)")


if __name__ == "__main__":
    main()
