"""Benchmark of the embedded data plane against the issue's targets, each figure beside a
Mosquitto baseline measured in the same run on the same machine (TLS 1.3, client
certificates required, no database):

    python bench/dataplane.py                          # SQLite, modest sizes
    python bench/dataplane.py --backend postgres --concurrent 10000 --connections-seconds 10

1. durable QoS 1 msgs/s   `bench/gateway.py`'s run: `mosquitto_pub -l` processes (C clients)
                          into the gateway with the ingest store (PUBACK = committed);
2. new mTLS connections/s `bench/c/mqtt_connect_load.c` (compiled with `cc`, see
                          `bench/connections.py`): one C process loops TLS 1.3 handshake with
                          a device certificate + CONNECT + CONNACK + DISCONNECT over
                          `--parallel` connections; `--connect-driver python`: the former
                          asyncio client processes (they cost as much CPU per handshake as
                          the gateway, so they measured themselves);
3. concurrent connections opened and held (a PINGREQ answered on each after all opened);
4. revoke -> disconnect   a connected device's certificate revoked; the time until its
                          connection closes (p50/p99). Mosquitto alone never drops a live
                          session on revocation: its figure (with `devicetrust ingest`'s
                          follower) is `bench/ingest.py`'s.

Sections 2-4 run the data plane exactly as `devicetrust serve` does (`EmbeddedDataPlane`
over a `Platform`: device authentication, live-revocation watch, audit). The machine has 2
cores: the load generators share them with the server, so those figures are a floor for the
server, and so are Mosquitto's (`bench/connections.py` reports CPU time per connection).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import connections as connections_bench  # bench/connections.py: the C connection driver
from _support import BenchDevice, database, enroll_devices, mosquitto

import gateway as gateway_bench  # bench/gateway.py: durable msgs/s, reused as it is
from devicetrust.gateway.codec import Connect, Disconnect, Pingreq, ProtocolVersion, encode
from devicetrust.pki import PkiService
from devicetrust.runtime import Platform
from devicetrust.runtime.data_plane import EmbeddedDataPlane
from devicetrust.vault import Vault

ACTOR = "operator:bench"
V5 = ProtocolVersion.V5
TARGETS = {
    "durable_msgs_per_s": 20_000,
    "new_connections_per_s": 1_000,
    "concurrent_connections": 10_000,
    "revoke_p99_ms": 1_000,
}


# ---- the load generators (child processes) --------------------------------------------------


def _context(cafile: str, device: list[str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(device[1], device[2])
    return context


async def _open(
    port: int, context: ssl.SSLContext, pid: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """TLS + CONNECT; the streams once CONNACK says Success, else None."""
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost"
        )
        writer.write(encode(Connect(V5, pid, keep_alive=300), V5))
        head = await asyncio.wait_for(reader.readexactly(4), 30)
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
        return None
    if head[0] != 0x20 or head[3] != 0:  # CONNACK, reason code Success (MQTT 5)
        writer.close()
        return None
    await reader.readexactly(head[1] - 2)  # the CONNACK's properties
    return reader, writer


async def _connect_loop(
    port: int, cafile: str, devices: list[list[str]], seconds: float
) -> dict[str, int]:
    done, failed = [0], [0]
    deadline = time.monotonic() + seconds

    async def one(device: list[str]) -> None:
        context = _context(cafile, device)
        while time.monotonic() < deadline:
            opened = await _open(port, context, device[0])
            if opened is None:
                failed[0] += 1
                continue
            opened[1].write(encode(Disconnect(), V5))
            opened[1].close()
            done[0] += 1

    await asyncio.gather(*(one(d) for d in devices))
    return {"connections": done[0], "failed": failed[0]}


async def _hold(
    port: int, cafile: str, devices: list[list[str]], parallel: int, ready: Any, release: Any
) -> dict[str, int]:
    gate = asyncio.Semaphore(parallel)
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def one(device: list[str]) -> None:
        async with gate:
            opened = await _open(port, _context(cafile, device), device[0])
        if opened is not None:
            held.append(opened)

    await asyncio.gather(*(one(d) for d in devices))
    for _, writer in held:  # all open at once: each still answers a PINGREQ
        writer.write(encode(Pingreq(), V5))
    answers = await asyncio.gather(
        *(asyncio.wait_for(r.readexactly(2), 60) for r, _ in held), return_exceptions=True
    )
    alive = sum(1 for a in answers if a == b"\xd0\x00")
    ready.set()
    release.wait(120)
    for _, writer in held:
        writer.close()
    return {"opened": len(held), "answered_ping": alive}


async def _watch_closes(
    port: int, cafile: str, devices: list[list[str]], ready: Any, seconds: float
) -> dict[str, float]:
    opened = [await _open(port, _context(cafile, d), d[0]) for d in devices]
    ready.set()
    closed: dict[str, float] = {}

    async def wait_eof(pid: str, reader: asyncio.StreamReader) -> None:
        try:
            while await reader.read(4096):
                pass
        except (OSError, ssl.SSLError):
            pass
        closed[pid] = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes

    tasks = [wait_eof(d[0], o[0]) for d, o in zip(devices, opened, strict=True) if o]
    await asyncio.wait([asyncio.ensure_future(t) for t in tasks], timeout=seconds)
    return closed


def _child(kind: str, *args: Any) -> Any:
    if kind == "connect":
        return asyncio.run(_connect_loop(*args))
    if kind == "hold":
        return asyncio.run(_hold(*args))
    return asyncio.run(_watch_closes(*args))


def _spread(devices: list[BenchDevice], parts: int) -> list[list[list[str]]]:
    rows = [[d.physical_id, str(d.cert), str(d.key)] for d in devices]
    return [rows[i::parts] for i in range(parts)]


# ---- the measurements -------------------------------------------------------------------------


def new_connections(
    pool: Any, port: int, cafile: str, devices: list[BenchDevice], args: argparse.Namespace
) -> dict[str, Any]:
    if args.connect_driver == "c":
        report = connections_bench.drive(
            args.c_driver,
            port,
            Path(cafile),
            args.c_devices,
            concurrency=args.parallel,
            seconds=args.connections_seconds,
        )
        return {
            "per_s": round(report["per_s"]),
            "failed": sum(report["failures"].values()),
            "driver": report,
        }
    parts = _spread(devices[: args.parallel], args.processes)
    results = pool.starmap(
        _child, [("connect", port, cafile, p, args.connections_seconds) for p in parts]
    )
    total = sum(r["connections"] for r in results)
    return {
        "per_s": round(total / args.connections_seconds),
        "failed": sum(r["failed"] for r in results),
    }


def concurrent(
    manager: Any,
    pool: Any,
    port: int,
    cafile: str,
    devices: list[BenchDevice],
    args: argparse.Namespace,
    live: Any = None,
) -> dict[str, Any]:
    ready = [manager.Event() for _ in range(args.processes)]
    release = manager.Event()
    parts = _spread(devices[: args.concurrent], args.processes)
    pending = pool.starmap_async(
        _child,
        [("hold", port, cafile, p, 64, r, release) for p, r in zip(parts, ready, strict=True)],
    )
    for event in ready:
        event.wait(600)
    server_side = live() if live is not None else None
    release.set()
    results = pending.get(600)
    return {
        "held": sum(r["answered_ping"] for r in results),
        "opened": sum(r["opened"] for r in results),
        "server_side": server_side,
    }


def revocations(
    manager: Any,
    pool: Any,
    plane: EmbeddedDataPlane,
    pki: PkiService,
    cafile: str,
    devices: list[BenchDevice],
    gap: float,
) -> dict[str, Any]:
    ready = manager.Event()
    rows = _spread(devices, 1)[0]
    assert plane.port is not None
    pending = pool.apply_async(
        _child, ("watch", plane.port, cafile, rows, ready, 30 + gap * len(rows))
    )
    ready.wait(600)
    revoked: dict[str, float] = {}
    for device in devices:
        revoked[device.physical_id] = time.monotonic()
        pki.revoke(device.serial_hex, "keyCompromise", actor=ACTOR)
        time.sleep(gap)
    closed = pending.get(600)
    ms = sorted((closed[p] - t) * 1000 for p, t in revoked.items() if p in closed)
    return {
        "trials": len(devices),
        "dropped": len(ms),
        "p50_ms": round(statistics.median(ms), 1) if ms else None,
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1) if ms else None,
    }


def serve_sections(args: argparse.Namespace, url: str, folder: Path) -> dict[str, Any]:
    settings = connections_bench.serve_settings(url, folder)
    platform = Platform(settings, vault=Vault.from_key(os.urandom(32)))
    out: dict[str, Any] = {}
    try:
        platform.pki.init_hierarchy(actor=ACTOR)
        count = max(args.concurrent, args.parallel) + args.revocations
        devices = enroll_devices(platform.identity, platform.pki, folder, count, actor=ACTOR)
        cafile = str(connections_bench.server_files(platform, folder))
        if args.connect_driver == "c":
            args.c_driver = connections_bench.build_driver(folder)
            args.c_devices = connections_bench.device_list(
                devices[: max(2 * args.parallel, 64)], folder / "devices.txt"
            )
        spawn = multiprocessing.get_context("spawn")
        with spawn.Manager() as manager, spawn.Pool(args.processes) as pool:
            plane = EmbeddedDataPlane(platform)
            assert plane.start() and plane.port is not None and plane.running is not None
            running = plane.running
            try:
                out["gateway_new_connections"] = new_connections(
                    pool, plane.port, cafile, devices, args
                )
                out["gateway_concurrent"] = concurrent(
                    manager,
                    pool,
                    plane.port,
                    cafile,
                    devices,
                    args,
                    live=lambda: running.call(lambda: running.gateway.live_sessions),
                )
                out["gateway_revoke"] = revocations(
                    manager,
                    pool,
                    plane,
                    platform.pki,
                    cafile,
                    devices[-args.revocations :],
                    args.gap,
                )
            finally:
                plane.stop()
            with mosquitto(
                folder,
                bundle=Path(cafile),
                cert=folder / "server.pem",
                key=folder / "server.key",
                extra=connections_bench.MOSQUITTO_EXTRA,
            ) as port:
                out["mosquitto_new_connections"] = new_connections(
                    pool, port, cafile, devices, args
                )
                out["mosquitto_concurrent"] = concurrent(manager, pool, port, cafile, devices, args)
    finally:
        platform.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--publishers", type=int, default=4, help="mosquitto_pub processes")
    parser.add_argument("--messages", type=int, default=10_000, help="per publisher")
    parser.add_argument("--processes", type=int, default=2, help="connection load processes")
    parser.add_argument("--parallel", type=int, default=32, help="connections in flight")
    parser.add_argument("--connections-seconds", type=float, default=5.0)
    parser.add_argument(
        "--connect-driver",
        choices=["c", "python"],
        default="c",
        help="new-connection load: the C generator or asyncio processes",
    )
    parser.add_argument("--concurrent", type=int, default=2_000)
    parser.add_argument("--revocations", type=int, default=100)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between revocations")
    args = parser.parse_args()
    durable = argparse.Namespace(
        publishers=args.publishers, messages=args.messages, sink="ingest", driver="mosquitto_pub"
    )
    with tempfile.TemporaryDirectory() as name, database(args.backend) as url:
        folder = Path(name)
        gateway = gateway_bench.bench_gateway(durable, url, folder)
        baseline = gateway_bench.bench_mosquitto(durable, folder, gateway.pop("pubs"))
    with tempfile.TemporaryDirectory() as name, database(args.backend) as url:
        figures = serve_sections(args, url, Path(name))
    report = {
        "backend": args.backend,
        "cores": os.cpu_count(),
        "targets": TARGETS,
        "durable": {"gateway": gateway, "mosquitto_no_db": baseline},
        **figures,
    }
    print(json.dumps(report, indent=2, default=str))
    g, m = figures, baseline
    print(f"\n{'':34}{'devicetrust':>14}{'mosquitto':>12}{'target':>9}", file=sys.stderr)
    rows = [
        (
            "durable QoS 1 msgs/s (" + args.backend + ")",
            gateway["msgs_per_s"],
            m["msgs_per_s"],
            TARGETS["durable_msgs_per_s"],
        ),
        (
            "new mTLS connections/s",
            g["gateway_new_connections"]["per_s"],
            g["mosquitto_new_connections"]["per_s"],
            TARGETS["new_connections_per_s"],
        ),
        (
            "concurrent connections held",
            g["gateway_concurrent"]["held"],
            g["mosquitto_concurrent"]["held"],
            TARGETS["concurrent_connections"],
        ),
        (
            "revoke -> disconnect p99 ms",
            g["gateway_revoke"]["p99_ms"],
            "n/a",
            TARGETS["revoke_p99_ms"],
        ),
    ]
    for label, ours, theirs, target in rows:
        print(f"{label:34}{ours!s:>14}{theirs!s:>12}{target:>9}", file=sys.stderr)


if __name__ == "__main__":
    main()
