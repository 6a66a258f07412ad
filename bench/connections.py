"""Benchmark: new mutual-TLS MQTT connections per second into the embedded gateway, as
`devicetrust serve` runs it, beside Mosquitto (TLS 1.3, client certificates required, the
same CA and device certificates) in the same run:

    python bench/connections.py                               # concurrency 8, 32, 128; twice
    python bench/connections.py --levels 32 --repeat 1 --seconds 20 --profile /tmp/gw.txt

The load comes from `bench/c/mqtt_connect_load.c` (compiled here with `cc`; needs a C
compiler and the OpenSSL headers: `apt-get install gcc libssl-dev`): one process, an epoll
loop per thread, each connection a full TLS 1.3 handshake with the next device's
certificate, CONNECT (client id = the physical id), CONNACK checked, DISCONNECT, the
server's close. A Python client does about as many handshakes per core as the gateway, so it
would measure itself; this one costs a fraction of the server's work per connection.

The gateway side is `EmbeddedDataPlane` over a `Platform` (device authentication with the
chain, revocation, unit state and policy checks; live-revocation watch; audit of refusals):
the devices are registered units with certificates from the platform's CA. Levels and
repeats alternate gateway and Mosquitto so both see the same machine load.
`--profile FILE` records the gateway's process with py-spy (`pip install py-spy`) during its
runs (raw collapsed stacks, `--native`: OpenSSL's C frames included; `--profile-gil`: only
the thread holding the GIL, Python frames, which disturbs the run far less).

Each gateway run also reports its CPU per connection by kind of thread
(`server_cpu_ms_per_conn_by_thread`): the event loop (`devicetrust-gateway`: TLS handshakes
and the MQTT state machine), the loop's executor threads (`uvloop` or `asyncio`: device
authentication), `gateway-feedback` and `gateway-revocation-watch`. With `--devices` well
above what connects in a run (e.g. `--devices 4000 --seconds 10`), nearly every connection
is a device's first since the start: the cold path (no verified chain or policy kept).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from _support import BenchDevice, csr, database, enroll_devices, free_port, mosquitto, write_key
from cryptography.hazmat.primitives.asymmetric import ec

from devicetrust.pki import CaRole, Profile
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.data_plane import EmbeddedDataPlane
from devicetrust.vault import Vault

ACTOR = "operator:bench"
SOURCE = Path(__file__).parent / "c" / "mqtt_connect_load.c"
TARGET_PER_S = 1_000
# Mosquitto leaves Nagle on by default: its CONNACK then waits for the client's delayed ACK
# of the session ticket (40 ms a connection, 22 conns/s at concurrency 1). asyncio turns
# Nagle off for the gateway; the baseline gets the same.
MOSQUITTO_EXTRA = "set_tcp_nodelay true\n"


def build_driver(folder: Path) -> Path:
    """Compile the C load generator into `folder`; its path."""
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        raise SystemExit(f"no C compiler ({compiler}): apt-get install gcc libssl-dev")
    binary = folder / "mqtt_connect_load"
    subprocess.run(
        [
            compiler,
            "-O2",
            "-Wall",
            "-Wextra",
            "-o",
            str(binary),
            str(SOURCE),
            "-lssl",
            "-lcrypto",
            "-lpthread",
        ],
        check=True,
    )
    return binary


def device_list(devices: list[BenchDevice], path: Path) -> Path:
    path.write_text("".join(f"{d.physical_id} {d.cert} {d.key}\n" for d in devices))
    return path


def drive(
    binary: Path,
    port: int,
    cafile: Path,
    devices_file: Path,
    *,
    concurrency: int,
    seconds: float,
    threads: int = 1,
    mqtt: int = 5,
) -> dict[str, Any]:
    """One run of the C load generator; its JSON report."""
    out = subprocess.run(
        [
            str(binary),
            "--port",
            str(port),
            "--cafile",
            str(cafile),
            "--devices",
            str(devices_file),
            "--concurrency",
            str(concurrency),
            "--seconds",
            str(seconds),
            "--threads",
            str(threads),
            "--mqtt",
            str(mqtt),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def server_files(platform: Platform, folder: Path) -> Path:
    """Mosquitto's server certificate from the same CA; returns the devices' trust file."""
    cas = {c.role: c.pem for c in platform.pki.list_cas()}
    key = ec.generate_private_key(ec.SECP256R1())
    server = platform.pki.issue_from_csr(
        csr(key),
        None,
        Profile.SERVER,
        actor=ACTOR,
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
    )
    (folder / "server.pem").write_text(server.pem + cas[CaRole.ISSUING])
    write_key(folder / "server.key", key)
    (folder / "bundle.pem").write_text(cas[CaRole.ROOT] + cas[CaRole.ISSUING])
    return folder / "bundle.pem"


def serve_settings(url: str, folder: Path) -> Settings:
    """`devicetrust serve`'s settings for the benchmarks: its database, a free port, no
    message-rate quota getting in the way of throughput runs."""
    return Settings.model_validate(
        {
            "data_dir": folder / "data",
            "database": {"url": url, "pool_size": 20},
            "gateway": {
                "port": free_port(),
                "public_host": "localhost",
                "message_rate": 1_000_000,
                "message_burst": 1_000_000,
            },
        }
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds() -> dict[str, float]:
    """CPU time used so far by each kind of thread of this process (the gateway's event loop,
    the authentication workers, feedback delivery, ...), by thread name without its number."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    used: dict[str, float] = {}
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        name = names.get(int(task.name), "other")
        kind = name.split(" ")[0].rstrip("0123456789_-") or "other"
        ticks = int(fields[11]) + int(fields[12])
        used[kind] = used.get(kind, 0.0) + ticks / os.sysconf("SC_CLK_TCK")
    return used


def _per_connection(
    after: dict[str, float], before: dict[str, float], connections: int
) -> dict[str, float]:
    """CPU ms per connection of each kind of thread between two `thread_cpu_seconds`."""
    used = {kind: seconds - before.get(kind, 0.0) for kind, seconds in after.items()}
    return {
        kind: round(seconds * 1000 / max(connections, 1), 2)
        for kind, seconds in sorted(used.items(), key=lambda item: -item[1])
        if seconds > 0
    }


def process_of(config: Path) -> int:
    """The pid of the Mosquitto started with `config`."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(config).encode() in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    raise RuntimeError("the mosquitto process is not found")


def _profiler(path: str | None, seconds: float, *, gil: bool) -> subprocess.Popen[bytes] | None:
    if path is None:
        return None
    mode = ["--gil", "--nonblocking"] if gil else ["--native"]
    return subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(os.getpid()),
            *mode,
            "--format",
            "raw",
            "--rate",
            "100",
            "--duration",
            str(int(seconds) + 1),
            "--output",
            path,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def measure(args: argparse.Namespace, url: str, folder: Path) -> dict[str, Any]:
    binary = build_driver(folder)
    platform = Platform(serve_settings(url, folder), vault=Vault.from_key(os.urandom(32)))
    runs: list[dict[str, Any]] = []
    try:
        platform.pki.init_hierarchy(actor=ACTOR)
        count = args.devices or max(2 * max(args.levels), 64)
        devices = enroll_devices(platform.identity, platform.pki, folder, count, actor=ACTOR)
        cafile = server_files(platform, folder)
        listed = device_list(devices, folder / "devices.txt")
        plane = EmbeddedDataPlane(platform)
        assert plane.start() and plane.port is not None
        try:
            with mosquitto(
                folder,
                bundle=cafile,
                cert=folder / "server.pem",
                key=folder / "server.key",
                extra=MOSQUITTO_EXTRA,
            ) as mosquitto_port:
                pids = {"gateway": os.getpid(), "mosquitto": process_of(folder / "mosquitto.conf")}
                for level in args.levels:
                    for attempt in range(args.repeat):
                        for broker, port in (
                            ("gateway", plane.port),
                            ("mosquitto", mosquitto_port),
                        ):
                            spy = _profiler(
                                args.profile and f"{args.profile}.{level}.{attempt}"
                                if broker == "gateway"
                                else None,
                                args.seconds,
                                gil=args.profile_gil,
                            )
                            before = cpu_seconds(pids[broker])
                            threads_before = thread_cpu_seconds()
                            report = drive(
                                binary,
                                port,
                                cafile,
                                listed,
                                concurrency=level,
                                seconds=args.seconds,
                                threads=args.threads,
                                mqtt=args.mqtt,
                            )
                            used = cpu_seconds(pids[broker]) - before
                            if broker == "gateway":
                                report["server_cpu_ms_per_conn_by_thread"] = _per_connection(
                                    thread_cpu_seconds(), threads_before, report["connections"]
                                )
                            if spy is not None:
                                spy.wait(60)
                            report["server_cpu_ms_per_conn"] = round(
                                used * 1000 / max(report["connections"], 1), 2
                            )
                            runs.append({"broker": broker, "attempt": attempt + 1, **report})
                            _progress(broker, level, attempt, report)
        finally:
            plane.stop()
    finally:
        platform.close()
    return {
        "backend": args.backend,
        "cores": os.cpu_count(),
        "target_per_s": TARGET_PER_S,
        "devices": count,
        "runs": runs,
    }


def _progress(broker: str, level: int, attempt: int, report: dict[str, Any]) -> None:
    print(
        f"{broker:10} c={level:<4} #{attempt + 1} {report['per_s']:>8} conns/s, "
        f"failures {sum(report['failures'].values())}, CPU ms/conn: server "
        f"{report['server_cpu_ms_per_conn']} client {report['client_cpu_ms_per_conn']}, "
        f"CONNACK p50/p99 ms {report['latency_ms']['connack']['p50']}/"
        f"{report['latency_ms']['connack']['p99']}",
        file=sys.stderr,
    )
    if "server_cpu_ms_per_conn_by_thread" in report:
        print(f"{'':10} by thread: {report['server_cpu_ms_per_conn_by_thread']}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--levels",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[8, 32, 128],
        help="concurrent connections, comma separated",
    )
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1, help="load generator threads")
    parser.add_argument("--mqtt", type=int, choices=[4, 5], default=5, help="4: MQTT 3.1.1")
    parser.add_argument("--devices", type=int, default=0, help="default: 2x the top level")
    parser.add_argument("--profile", help="py-spy raw output prefix for the gateway runs")
    parser.add_argument(
        "--profile-gil", action="store_true", help="profile the GIL holder only (py-spy --gil)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name, database(args.backend) as url:
        report = measure(args, url, Path(name))
    print(json.dumps(report, indent=2))
    print(f"\n{'concurrency':>12}{'devicetrust':>24}{'mosquitto':>24}", file=sys.stderr)
    for level in args.levels:
        row = {
            b: [
                r["per_s"] for r in report["runs"] if r["broker"] == b and r["concurrency"] == level
            ]
            for b in ("gateway", "mosquitto")
        }
        print(
            f"{level:>12}{' / '.join(map(str, row['gateway'])):>24}"
            f"{' / '.join(map(str, row['mosquitto'])):>24}",
            file=sys.stderr,
        )
    print(f"target: {TARGET_PER_S} new mTLS connections/s (gateway)", file=sys.stderr)


if __name__ == "__main__":
    main()
