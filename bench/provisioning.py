"""Benchmark: full provisionings per second over HTTPS with concurrent clients: symmetric-key
and X.509 attestation, operational CSR, issuance, database (PostgreSQL by default).

    python bench/provisioning.py                        # PostgreSQL, 1000 devices, 16 clients
    python bench/provisioning.py --backend sqlite --n 200 --clients 4
    python bench/provisioning.py --workers 2            # `devicetrust serve --workers 2`
    python bench/provisioning.py --json

Each device's material (derived key, birth certificate, operational key and CSR) is prepared
before the clock starts; what is timed is what a production line's devices do: (x509: POST
challenge, sign) POST register, over TLS (keep-alive connections, one per client thread) to
a uvicorn server in this process, or with `--workers N` to a real `devicetrust serve
--workers N` started as a subprocess. The clients run on the same machine and use CPU too.
Target (issue 4): >= 1000 devices/s on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from _support import database, free_port  # bench/_support.py
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devicetrust.api import create_app
from devicetrust.identity import UnitSpec
from devicetrust.pki import CaRole, IssueRequest, Profile
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    challenge_message,
    encode_token,
)
from devicetrust.provisioning.symmetric import b64url
from devicetrust.runtime import Platform, Settings
from devicetrust.vault import Vault, generate_kek_text

Job = Callable[[httpx.Client], None]


def _check(response: httpx.Response) -> None:
    if response.is_error:
        raise RuntimeError(f"{response.status_code}: {response.text[:300]}")


def csr_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def tls_files(platform: Platform, tmp: Path) -> tuple[Path, Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = platform.pki.issue_from_csr(
        csr_of(key), None, Profile.SERVER, actor="bench", ip_addresses=["127.0.0.1"]
    )
    key_file, cert_file, ca_file = tmp / "server.key", tmp / "server.pem", tmp / "ca.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_text(cert.pem + platform.pki.chain_pem(CaRole.ISSUING))
    ca_file.write_text(platform.pki.chain_pem(CaRole.ISSUING))
    return key_file, cert_file, ca_file


# The bench's operational keys are software keys (no TPM): the secure baseline's
# `hardware_key_required` would refuse them, so the operator relaxes it per enrollment.
SOFTWARE_KEYS = "bench: operational keys are generated in software, there is no TPM"


def relax_hardware_key(platform: Platform, enrollment: str) -> None:
    platform.policy.relax(
        "hardware_key_required",
        False,
        f"enrollment:{enrollment}",
        reason=SOFTWARE_KEYS,
        expires="1d",
        actor="bench",
    )


def symmetric_group(platform: Platform, name: str, n: int) -> list[tuple[str, bytes, str]]:
    """A symmetric-key group of `n` new units: (physical id, its derived key, a fresh token
    signed with it) each; the factory's and the device's preparation, before the clock."""
    shown = platform.provisioning.enrollments.create_symmetric_group(
        name,
        Allocation(AllocationPolicy.POOL, pool_pattern=f"{name}-{{1..{n}}}"),
        actor="bench",
    )
    relax_hardware_key(platform, name)
    units = platform.identity.register_batch([UnitSpec("bench", {})] * n, actor="bench")
    exp = datetime.now(UTC) + timedelta(minutes=30)
    out = []
    for unit in units:
        key = hmac.digest(bytes(shown.key), unit.physical_id.encode(), hashlib.sha256)
        token = encode_token(key, unit.physical_id, exp, secrets.token_urlsafe(16))
        out.append((unit.physical_id, key, token))
    return out


def x509_group(platform: Platform, name: str, n: int) -> list[tuple[str, Any, str]]:
    """An x509 group (the manufacturing CA) of `n` new units: (physical id, birth key,
    birth certificate PEM) each."""
    manufacturing = platform.pki.active_ca(CaRole.MANUFACTURING).ca_id
    platform.provisioning.enrollments.create_x509_group(
        name,
        manufacturing,
        Allocation(AllocationPolicy.POOL, pool_pattern=f"{name}-{{1..{n}}}"),
        actor="bench",
    )
    relax_hardware_key(platform, name)
    units = platform.identity.register_batch([UnitSpec("bench", {})] * n, actor="bench")
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in units]
    births = platform.pki.issue_batch(
        [
            IssueRequest(csr_of(k), u.physical_id, Profile.BIRTH)
            for k, u in zip(keys, units, strict=True)
        ],
        actor="bench",
    )
    return [(u.physical_id, k, b.pem) for u, k, b in zip(units, keys, births, strict=True)]


def symmetric_jobs(platform: Platform, n: int) -> list[Job]:
    jobs: list[Job] = []
    for physical_id, _key, token in symmetric_group(platform, "bench-sym", n):
        body = {
            "physical_id": physical_id,
            "method": "symmetric-key",
            "csr": csr_of(ec.generate_private_key(ec.SECP256R1())).decode(),
            "evidence": {"token": token},
        }
        jobs.append(lambda c, b=body: _check(c.post("/v1/provisioning/register", json=b)))
    return jobs


def x509_jobs(platform: Platform, n: int) -> list[Job]:
    jobs: list[Job] = []
    for pid, key, pem in x509_group(platform, "bench-x509", n):
        csr = csr_of(ec.generate_private_key(ec.SECP256R1()))

        def job(
            c: httpx.Client, pid: str = pid, key: Any = key, pem: str = pem, csr: bytes = csr
        ) -> None:
            got = c.post("/v1/provisioning/challenge", json={"physical_id": pid, "method": "x509"})
            challenge = got.raise_for_status().json()
            message = challenge_message(
                challenge["challenge_id"], challenge["payload"]["nonce"], pid, csr
            )
            signature = b64url(key.sign(message, ec.ECDSA(hashes.SHA256())))
            evidence = {
                "challenge_id": challenge["challenge_id"],
                "birth_chain": pem,
                "signature": signature,
            }
            body = {"physical_id": pid, "method": "x509", "csr": csr.decode(), "evidence": evidence}
            _check(c.post("/v1/provisioning/register", json=body))

        jobs.append(job)
    return jobs


def run(jobs: list[Job], base: str, ca_file: Path, clients: int) -> float:
    local = threading.local()
    opened: list[httpx.Client] = []

    def work(job: Job) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=base, verify=str(ca_file), timeout=60)
            opened.append(client)
        job(client)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(work, jobs))
    rate = len(jobs) / (time.perf_counter() - start)
    for client in opened:
        client.close()
    return rate


# No refusal ever happens here; the attempt buckets must not count the bench's challenges.
_BENCH_LIMITS = {"attempt_burst": 1_000_000, "attempt_refill_per_minute": 1_000_000}


def figures(url: str, n: int, clients: int, workers: int) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        kek = generate_kek_text()
        config = {"data_dir": tmp, "database": {"url": url}, "provisioning": _BENCH_LIMITS}
        platform = Platform(Settings.model_validate(config), vault=Vault.from_encoded(kek))
        platform.pki.init_hierarchy(actor="bench")
        key_file, cert_file, ca_file = tls_files(platform, tmp)
        port = free_port()
        if workers:
            stop = serve_subprocess(tmp, url, kek, key_file, cert_file, port, workers)
        else:
            stop = serve_in_thread(platform, key_file, cert_file, port)
        base = f"https://127.0.0.1:{port}"
        wait_ready(base, ca_file)
        rows = [
            {
                "what": "symmetric-key",
                "rate": run(symmetric_jobs(platform, n), base, ca_file, clients),
            },
            {
                "what": "x509 (challenge + register)",
                "rate": run(x509_jobs(platform, n), base, ca_file, clients),
            },
        ]
        stop()
        platform.close()
        return rows


def serve_in_thread(
    platform: Platform, key_file: Path, cert_file: Path, port: int
) -> Callable[[], None]:
    config = uvicorn.Config(
        create_app(platform),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ssl_keyfile=str(key_file),
        ssl_certfile=str(cert_file),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return stop


def serve_subprocess(
    tmp: Path, url: str, kek: str, key_file: Path, cert_file: Path, port: int, workers: int
) -> Callable[[], None]:
    """The real `devicetrust serve --workers N`, configured through the environment."""
    env = {
        **os.environ,
        "DEVICETRUST_DATA_DIR": str(tmp),
        "DEVICETRUST_DATABASE_URL": url,
        "DEVICETRUST_KEK": kek,
        "DEVICETRUST_SERVER_TLS_CERT": str(cert_file),
        "DEVICETRUST_SERVER_TLS_KEY": str(key_file),
        "DEVICETRUST_PROVISIONING_ATTEMPT_BURST": str(_BENCH_LIMITS["attempt_burst"]),
        "DEVICETRUST_PROVISIONING_ATTEMPT_REFILL_PER_MINUTE": str(
            _BENCH_LIMITS["attempt_refill_per_minute"]
        ),
        "DEVICETRUST_LOGGING_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "devicetrust.cli.main", "serve", "--port", str(port)]
    log = (tmp / "serve.log").open("w")
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--workers", str(workers)],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: a hung stop can end it whole
    )

    def stop() -> None:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # never leave a server or workers behind
            code = server.wait()
        log.close()
        if code != 0:  # the figures were measured: say so, and keep them
            sys.stderr.write((tmp / "serve.log").read_text()[-4000:])
            sys.stderr.write(f"warning: devicetrust serve exited with {code}\n")

    return stop


def wait_ready(base: str, ca_file: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{base}/healthz", verify=str(ca_file), timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--n", type=int, default=1000, help="devices per method")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--workers", type=int, default=0, help="run `devicetrust serve --workers N` (0: in-process)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with database(args.backend) as url:
        found = figures(url, args.n, args.clients, args.workers)
    rows = [{"backend": args.backend, "workers": args.workers, **r} for r in found]
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    print(f"{'backend':<11} {'server processes':<17} {'attestation':<30} {'devices/s':>10}")
    for row in rows:
        procs = row["workers"] or "1 (in-process)"
        rate = float(str(row["rate"]))
        print(f"{row['backend']!s:<11} {procs!s:<17} {row['what']!s:<30} {rate:>10,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
