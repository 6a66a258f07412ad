"""Benchmark: the certificate authority on SQLite and PostgreSQL, each figure printed beside
ECDSA P-256 sign rates measured in the same run (`openssl speed -seconds 3 ecdsap256` and
`cryptography`'s raw sign, on as many cores as the figure used).

    python bench/pki.py                       # both backends, default sizes
    python bench/pki.py --backend sqlite --n 1000
    python bench/pki.py --json                # machine-readable figures

Figures per backend (workers are processes, each with its own `PkiService`):
  issue_from_csr       certificates/s from pre-generated P-256 CSRs, one per call
  issue_batch          the same in batches of `--batch` (one transaction each)
  HTTP POST            `/v1/pki/certificates` through uvicorn and httpx (n/a without the route)
  OCSP                 responses/s from `OcspResponder.respond` over the database status
                       source; pre-built requests, half for revoked certificates, half with a
                       nonce (signed afresh) and half without (cached signature reused)
  generate_crl         seconds to sign a CRL of `--crl-entries` revoked certificates (the
                       revoked rows are bulk-inserted with SQLAlchemy core for the setup)
Targets (issue 3): >= 1,500 issuances/s through the service on 2 cores, OCSP >= 3,000/s.
PostgreSQL: a throw-away database on DEVICETRUST_TEST_PG_URL's server, dropped at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import queue
import random
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from sqlalchemy import insert, update

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import database, free_port  # bench/_support.py: throw-away databases

from devicetrust.api import create_app
from devicetrust.auth import Scope
from devicetrust.domain import SystemClock
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import IssueRequest, Keyring, PkiService
from devicetrust.pki.keys import KekPassword
from devicetrust.pki.ocsp import OcspResponder
from devicetrust.runtime import Platform, Settings
from devicetrust.store import Database, upgrade
from devicetrust.store.models import IssuedCertificateRow
from devicetrust.vault import Vault

Row = dict[str, Any]
ISSUE_ROUTE = "/v1/pki/certificates"


@dataclass(frozen=True)
class Job:
    """What one worker process does: `kind` over `items`, after one untimed warm-up item."""

    kind: str  # "single" | "batch" | "ocsp" | "sign"
    items: list[Any]
    url: str = ""
    key_dir: str = ""
    kek: bytes = b""
    batch: int = 100
    ca_id: str = ""


def _service(job: Job) -> PkiService:
    keys = Keyring(Path(job.key_dir), password=KekPassword(Vault.from_key(job.kek)))
    return PkiService(Database(job.url), SystemClock(), keys)


def _prepare(job: Job) -> Callable[[], None]:
    """Set up and warm up (CA certificate parsed, keys opened); return the timed part."""
    if job.kind == "sign":
        key = ec.generate_private_key(ec.SECP256R1())
        return lambda: [key.sign(m, ec.ECDSA(hashes.SHA256())) for m in job.items] and None
    pki = _service(job)
    warmup, items = job.items[0], job.items[1:]
    if job.kind == "ocsp":
        signer = pki.ocsp_signer(job.ca_id)
        responder = OcspResponder(
            [(signer.issuer, signer.certificate, pki.ocsp_signing_key(signer))],
            pki.status_source(),
            SystemClock(),
        )
        responder.respond(warmup)
        return lambda: [responder.respond(der) for der in items] and None
    pki.issue_batch([warmup], actor="bench")
    if job.kind == "single":
        return lambda: (
            [pki.issue_from_csr(r.csr, r.physical_id, actor="bench") for r in items] and None
        )
    batches = [items[i : i + job.batch] for i in range(0, len(items), job.batch)]
    return lambda: [pki.issue_batch(b, actor="bench") for b in batches] and None


def _worker(job: Job, barrier: Any, results: Any) -> None:
    run = _prepare(job)
    barrier.wait(timeout=600)
    start = time.perf_counter()
    run()
    results.put(time.perf_counter() - start)


def parallel(jobs: list[Job]) -> float:
    """Operations/s of `jobs` run at once, one process each, started together (the
    slowest worker's time counts)."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(len(jobs)), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(job, barrier, results)) for job in jobs]
    for proc in procs:
        proc.start()
    elapsed: list[float] = []
    while len(elapsed) < len(procs):
        try:
            elapsed.append(results.get(timeout=1))
        except queue.Empty:
            if any(proc.exitcode for proc in procs):
                for proc in procs:
                    proc.terminate()
                raise RuntimeError("a benchmark worker failed") from None
    for proc in procs:
        proc.join()
    return sum(len(job.items) - (job.kind != "sign") for job in jobs) / max(elapsed)


def split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


# ---- baselines ----------------------------------------------------------------------------


def openssl_sign_rate(cores: int) -> float | None:
    command = ["openssl", "speed", "-seconds", "3", *(["-multi", str(cores)] * (cores > 1))]
    try:
        out = subprocess.run(
            [*command, "ecdsap256"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    # " 256 bits ecdsa (nistp256)   0.0000s   0.0000s  71133.0  24238.0": sign/s, verify/s
    match = re.search(r"ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+[\d.]+", out)
    return float(match.group(1)) if match else None


def crypto_sign_rate(cores: int, n: int = 50_000) -> float:
    return parallel([Job("sign", [os.urandom(32) for _ in range(n)]) for _ in range(cores)])


# ---- set-up -------------------------------------------------------------------------------


def new_csrs(n: int) -> list[bytes]:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return [
        builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()).public_bytes(
            Encoding.PEM
        )
        for _ in range(n)
    ]


@dataclass
class Ca:
    url: str
    key_dir: str
    kek: bytes
    db: Database
    pki: PkiService
    identity: IdentityService
    issuing_id: str

    def close(self) -> None:
        self.pki.close()
        self.db.dispose()

    def job(self, kind: str, items: list[Any], batch: int = 100) -> Job:
        return Job(kind, items, self.url, self.key_dir, self.kek, batch, self.issuing_id)

    def requests(self, n: int) -> list[IssueRequest]:
        """`n` device requests for `n` fresh units (no two workers lock the same unit)."""
        spec = UnitSpec("bench-arm", {"controller": "C"})
        units = [
            u.physical_id
            for start in range(0, n, 1000)
            for u in self.identity.register_batch([spec] * min(1000, n - start), actor="bench")
        ]
        return [IssueRequest(csr, unit) for csr, unit in zip(new_csrs(n), units, strict=True)]


def new_ca(url: str, tmp: str) -> Ca:
    db = Database(url)
    upgrade(db)
    kek = os.urandom(32)
    key_dir = str(Path(tmp) / "ca")
    pki = PkiService(
        db, SystemClock(), Keyring(Path(key_dir), password=KekPassword(Vault.from_key(kek)))
    )
    hierarchy = pki.init_hierarchy(actor="bench")
    return Ca(
        url, key_dir, kek, db, pki, IdentityService(db, SystemClock()), hierarchy.issuing.ca_id
    )


def ocsp_requests(ca: Ca, certificates: int, n: int) -> list[bytes]:
    """`n` requests over `certificates` certificates, half of them revoked; half the
    requests carry a nonce. Shuffled, so every worker sees the same mix."""
    wanted = ca.requests(certificates)
    issued = [
        c
        for i in range(0, certificates, 500)
        for c in ca.pki.issue_batch(wanted[i : i + 500], actor="bench")
    ]
    revoked = issued[::2]
    with ca.db.engine.begin() as conn:
        conn.execute(
            update(IssuedCertificateRow)
            .where(IssuedCertificateRow.serial.in_([f"{c.serial:040x}" for c in revoked]))
            .values(revoked_at=ca.pki.clock.now(), revocation_reason="keyCompromise")
        )
    issuer = ca.pki.get_ca(ca.issuing_id).certificate
    out = []
    for i in range(n):
        builder = ocsp.OCSPRequestBuilder().add_certificate(
            issued[i % len(issued)].certificate, issuer, hashes.SHA1()
        )
        if i % 4 >= 2:
            builder = builder.add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
        out.append(builder.build().public_bytes(Encoding.DER))
    random.shuffle(out)
    return out


def crl_seconds(ca: Ca, entries: int, runs: int = 3) -> float:
    """Median time of `generate_crl` over `entries` revoked certificates, bulk-inserted."""
    now = ca.pki.clock.now()
    reasons = ["keyCompromise", "superseded", "cessationOfOperation", "unspecified", None]
    serials = [secrets.randbits(159) | 1 for _ in range(entries)]
    placeholder = b"bench: generate_crl reads serial, dates and reason only"
    rows = [
        dict(serial=f"{serial:040x}", issuer_ca_id=ca.issuing_id, profile="device",
             subject="CN=bench", not_before=now - timedelta(hours=1),
             not_after=now + timedelta(hours=23), der=placeholder,
             fingerprint_sha256=hashlib.sha256(serial.to_bytes(20, "big")).hexdigest(),
             spki_sha256=hashlib.sha256(b"%d" % i).hexdigest(), issued_at=now,
             issued_by="bench", revoked_at=now - timedelta(seconds=i),
             revocation_reason=reasons[i % len(reasons)], revoked_by="bench")
        for i, serial in enumerate(serials)
    ]  # fmt: skip
    with ca.db.engine.begin() as conn:
        for start in range(0, entries, 5000):
            conn.execute(insert(IssuedCertificateRow), rows[start : start + 5000])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        record = ca.pki.generate_crl(ca.issuing_id, actor="bench")
        times.append(time.perf_counter() - start)
        assert record.entries == entries, record.entries
    return sorted(times)[len(times) // 2]


def http_rate(url: str, tmp: str, n: int) -> float | None:
    """POST /v1/pki/certificates, one client, server in the same process; None without it."""
    settings = Settings.model_validate({"data_dir": tmp, "database": {"url": url}})
    platform = Platform(settings, vault=Vault.from_key(os.urandom(32)))
    app = create_app(platform)
    if "post" not in app.openapi()["paths"].get(ISSUE_ROUTE, {}):
        platform.close()
        return None
    platform.pki.init_hierarchy(actor="bench")
    _, token = platform.api_keys.create("bench", [Scope.PKI_WRITE], actor="bench")
    spec = UnitSpec("bench-arm", {"controller": "C"})
    units = [
        u.physical_id for u in platform.identity.register_batch([spec] * (n + 1), actor="bench")
    ]
    bodies = [
        {"csr": c.decode(), "physical_id": u} for c, u in zip(new_csrs(n + 1), units, strict=True)
    ]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        client.post(ISSUE_ROUTE, json=bodies[0]).raise_for_status()  # warm-up
        start = time.perf_counter()
        for body in bodies[1:]:
            client.post(ISSUE_ROUTE, json=body).raise_for_status()
        result = n / (time.perf_counter() - start)
    server.should_exit = True
    thread.join(timeout=10)
    platform.close()
    return result


# ---- figures ------------------------------------------------------------------------------

TARGETS = {"issue": 1500.0, "ocsp": 3000.0}  # per second, on 2 cores (issue 3)


def backend_figures(backend: str, args: argparse.Namespace, workers: list[int]) -> list[Row]:
    rows: list[Row] = []

    def add(operation: str, kind: str, n: int, value: float | None, unit: str) -> None:
        target = TARGETS.get(kind) if n == 2 else None
        rows.append(dict(backend=backend, operation=operation, workers=n, value=value,
                         unit=unit, target=target))  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp, database(backend) as url:
        ca = new_ca(url, tmp)
        for n in workers:
            rate = parallel([ca.job("single", p) for p in split(ca.requests(args.n + n), n)])
            add("issue_from_csr (service)", "issue", n, rate, "cert/s")
        for n in workers:
            parts = split(ca.requests(args.n * 2 + n), n)
            rate = parallel([ca.job("batch", p, args.batch) for p in parts])
            add(f"issue_batch of {args.batch} (service)", "issue", n, rate, "cert/s")
        requests = ocsp_requests(ca, args.ocsp_certificates, args.ocsp_n + max(workers))
        for n in workers:
            rate = parallel([ca.job("ocsp", p) for p in split(requests[: args.ocsp_n + n], n)])
            add("OCSP respond (1/2 revoked, 1/2 nonce)", "ocsp", n, rate, "resp/s")
        ca.close()
    with tempfile.TemporaryDirectory() as tmp, database(backend) as url:
        ca = new_ca(url, tmp)
        seconds = crl_seconds(ca, args.crl_entries)
        add(f"generate_crl, {args.crl_entries:,} revoked", "crl", 1, seconds, "s")
        ca.close()
    with tempfile.TemporaryDirectory() as tmp, database(backend) as url:
        rate = http_rate(url, tmp, max(args.n // 4, 50))
        add(f"HTTP POST {ISSUE_ROUTE}", "http", 1, rate, "cert/s")
    return rows


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.2f}" if unit == "s" else f"{value:,.0f}"


def print_table(cores: int, rows: list[Row]) -> None:
    line = "{:<10} {:<38} {:>7} {:>9} {:<6} {:<13} {:>9} {:>9}"
    print(f"{cores} cores; workers are processes; beside each figure, P-256 sign/s measured")
    print("in this run on as many cores by `openssl speed ecdsap256` and by `cryptography`")
    print(
        line.format(
            "backend", "operation", "workers", "value", "unit", "target", "openssl", "crypto"
        )
    )
    for row in rows:
        target = ""
        if row["target"] is not None and row["value"] is not None:
            verdict = "ok" if row["value"] >= row["target"] else "MISS"
            target = f">={row['target']:,.0f} {verdict}"
        print(
            line.format(
                row["backend"],
                row["operation"],
                row["workers"],
                _cell(row["value"], row["unit"]),
                row["unit"],
                target,
                _cell(row["openssl_sign_per_s"], "/s"),
                _cell(row["crypto_sign_per_s"], "/s"),
            )
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--n", type=int, default=2000, help="certificates per issue figure")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--ocsp-n", type=int, default=10_000, help="OCSP requests per figure")
    parser.add_argument("--ocsp-certificates", type=int, default=1000)
    parser.add_argument("--crl-entries", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    workers = sorted({1, 2, cores})
    baselines = {
        n: {"openssl_sign_per_s": openssl_sign_rate(n), "crypto_sign_per_s": crypto_sign_rate(n)}
        for n in workers
    }
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    rows = [
        {**row, **baselines[row["workers"]]}
        for backend in backends
        for row in backend_figures(backend, args, workers)
    ]
    if args.json:
        json.dump({"cores": cores, "baselines": baselines, "figures": rows}, sys.stdout, indent=2)
        print()
    else:
        print_table(cores, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
