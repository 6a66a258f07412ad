"""Benchmark of the production data plane: durable QoS 1 messages per second stored through
Mosquitto (TLS 1.3, mutual certificates) and `devicetrust ingest`, beside a baseline measured
in the same run on the same broker -- Mosquitto alone, a paho publisher to a paho subscriber,
no database -- and the revoke-to-disconnect latency of the revocation follower.

    python bench/ingest.py --messages 20000 --workers 2 --backend postgres

Load: `--publishers` devices, each a paho-mqtt client publishing its share at QoS 1 (up to
1,000 in flight). A message counts for the ingest figure when its row is committed; for the
baseline when the subscriber has it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from _support import database, enroll_devices, free_port  # bench/_support.py
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from devicetrust.domain import SystemClock
from devicetrust.identity import IdentityService
from devicetrust.ingest import (
    BrokerFiles,
    BrokerPlan,
    write_mosquitto_config,
)
from devicetrust.pki import Keyring, PkiService
from devicetrust.pki.keys import KekPassword
from devicetrust.store import Database, upgrade
from devicetrust.store.models_data_plane import DeviceMessageRow
from devicetrust.vault import Vault

ACTOR = "bench"


def tls(cafile: Path, cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cafile))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(str(cert), str(key))
    return context


def client(port: int, context: ssl.SSLContext, client_id: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.tls_set_context(context)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    connected = threading.Event()
    c.on_connect = lambda *_: connected.set()
    c.connect("127.0.0.1", port, keepalive=60)
    c.loop_start()
    if not connected.wait(15):
        raise SystemExit("could not connect to the broker")
    return c


def publish_all(devices: list[tuple[str, ssl.SSLContext]], port: int, count: int, tag: str) -> None:
    def one(pid: str, context: ssl.SSLContext, n: int) -> None:
        c = client(port, context, pid)
        infos = [
            c.publish(f"devices/{pid}/telemetry", json.dumps({"run": tag, "seq": i}), qos=1)
            for i in range(n)
        ]
        for info in infos:
            info.wait_for_publish(60)
        c.disconnect()
        c.loop_stop()

    share = count // len(devices)
    threads = [threading.Thread(target=one, args=(pid, ctx, share)) for pid, ctx in devices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def subscriber_process(port: int, cafile: str, cert: str, key: str, count: int) -> None:
    """The baseline's consumer, in a process of its own like an ingest worker: a paho
    subscriber that prints `ready`, then `done` after `count` messages."""
    got = 0
    done = threading.Event()

    def on_message(*_: object) -> None:
        nonlocal got
        got += 1
        if got >= count:
            done.set()

    sub = client(port, tls(Path(cafile), Path(cert), Path(key)), "bench-baseline")
    sub.on_message = on_message
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.subscribe("devices/+/telemetry", qos=1)
    subscribed.wait(30)
    print("ready", flush=True)
    print("done" if done.wait(600) else f"only {got}", flush=True)


def baseline(
    devices: list[tuple[str, ssl.SSLContext]],
    port: int,
    backend_port: int,
    files: BrokerFiles,
    count: int,
) -> float:
    sub = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--subscriber",
            str(backend_port),
            str(files.device_cafile),
            str(files.ingest_cert),
            str(files.ingest_key),
            str(count),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sub.stdout is not None
        if sub.stdout.readline().strip() != "ready":
            raise SystemExit("baseline subscriber did not start")
        start = time.perf_counter()
        publish_all(devices, port, count, "baseline")
        line = sub.stdout.readline().strip()
        elapsed = time.perf_counter() - start
        if line != "done":
            raise SystemExit(f"baseline: {line} of {count} received")
        return count / elapsed
    finally:
        sub.terminate()
        sub.wait(30)


def stored(db: Database) -> int:
    with db.read() as session:
        return int(session.execute(select(func.count()).select_from(DeviceMessageRow)).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--revocations", type=int, default=20)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--subscriber", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscriber:
        port, cafile, cert, key, count = args.subscriber
        subscriber_process(int(port), cafile, cert, key, int(count))
        return
    if shutil.which("mosquitto") is None:
        raise SystemExit("mosquitto is not installed")
    clock = SystemClock()
    work = Path(tempfile.mkdtemp(prefix="devicetrust-bench-"))
    os.chmod(work, 0o755)  # Mosquitto drops root to its own user
    process = None
    workers: list[subprocess.Popen[bytes]] = []
    with database(args.backend) as url, Vault.from_key(os.urandom(32)) as kek:
        db = Database(url, pool_size=20)
        upgrade(db)
        pki = PkiService(db, clock, Keyring(work / "ca", password=KekPassword(kek)))
        identity = IdentityService(db, clock)
        pki.init_hierarchy(actor=ACTOR)
        port, backend_port = free_port(), free_port()
        plan = BrokerPlan(
            host="127.0.0.1", port=port, backend_port=backend_port, ip_addresses=("127.0.0.1",)
        )
        files = write_mosquitto_config(pki, plan, work / "broker", actor=ACTOR).files
        log = (work / "mosquitto.log").open("wb")
        process = subprocess.Popen(
            ["mosquitto", "-c", str(files.conf)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            time.sleep(1.0)

            def device(name: str) -> tuple[str, ssl.SSLContext, str]:
                [made] = enroll_devices(identity, pki, work, 1, actor=ACTOR, names=[name])
                ctx = tls(files.device_cafile, made.cert, made.key)
                return made.physical_id, ctx, made.serial_hex

            devices = [device(f"bench-{i}")[:2] for i in range(args.publishers)]
            base = baseline(devices, port, backend_port, files, args.messages)

            # The workers run as `devicetrust ingest` processes, as in production.
            env = {
                **os.environ,
                "DEVICETRUST_DATABASE_URL": url,
                "DEVICETRUST_DATA_DIR": str(work / "data"),
            }
            workers += [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "devicetrust",
                        "ingest",
                        "--broker-dir",
                        str(files.directory),
                        "--client-id",
                        f"bench-ingest-{i}",
                        "--batch",
                        str(args.batch),
                        *(["--no-follow-revocations"] if i else []),
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                for i in range(args.workers)
            ]
            for w in workers:  # each prints "ingest running" once subscribed
                assert w.stderr is not None
                if b"ingest running" not in w.stderr.readline():
                    raise SystemExit("an ingest worker did not start")
                threading.Thread(target=w.stderr.read, daemon=True).start()  # keep it drained
            start = time.perf_counter()
            publish_all(devices, port, args.messages, "ingest")
            deadline = time.monotonic() + 600
            while stored(db) < args.messages and time.monotonic() < deadline:
                time.sleep(0.01)
            elapsed = time.perf_counter() - start
            count = stored(db)

            latencies = []
            for i in range(args.revocations):
                pid, ctx, serial = device(f"revoked-{i}")
                gone = threading.Event()
                c = client(port, ctx, pid)
                c.on_disconnect = lambda *_, gone=gone: gone.set()
                t0 = time.perf_counter()
                pki.revoke(serial, "keyCompromise", actor=ACTOR)
                if gone.wait(30):
                    latencies.append((time.perf_counter() - t0) * 1000)
                c.loop_stop()
        finally:
            for w in workers:
                w.terminate()
                w.wait(30)
            process.terminate()
            process.wait(10)
            log.close()
            pki.close()
            db.dispose()
            shutil.rmtree(work, ignore_errors=True)
    latencies.sort()
    report = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": args.backend,
        "messages": args.messages,
        "publishers": args.publishers,
        "workers": args.workers,
        "mosquitto_alone_msgs_per_s": round(base),
        "mosquitto_plus_ingest_stored_msgs_per_s": round(count / elapsed),
        "stored": count,
        "revoke_to_disconnect_ms": {
            "trials": len(latencies),
            "p50": round(statistics.median(latencies), 1) if latencies else None,
            "max": round(latencies[-1], 1) if latencies else None,
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
