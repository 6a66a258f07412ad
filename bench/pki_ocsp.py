"""Benchmark: OCSP responses/s from `OcspResponder.respond` (sans-I/O: DER in, DER out, an
in-memory status source, ECDSA P-256 delegated signer in a `file:` CaKey), next to
`openssl speed -seconds 3 ecdsap256` sign/s measured in the same run.

    python bench/pki_ocsp.py                 # 1 process and one per core
    python bench/pki_ocsp.py --n 20000 --json

Three request mixes: `nonce` (every response signed afresh: what `openssl ocsp` sends),
`distinct` (no nonce, a new serial each time: every response signed, then cached) and
`cached` (no nonce, a few hot serials: signatures reused, status still read every time).
Target (issue 3): >= 3,000 responses/s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pki.ocsp_fixtures import build_pki

from devicetrust.domain.clock import SystemClock
from devicetrust.pki.ocsp import OcspResponder

MIXES = ("nonce", "distinct", "cached")


def _requests(mix: str, n: int, issuer: x509.Certificate, serials: list[int]) -> list[bytes]:
    name_hash = hashes.Hash(hashes.SHA1())
    name_hash.update(issuer.subject.public_bytes())
    digest = name_hash.finalize()
    key_hash = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest
    out = []
    for i in range(n):
        serial = serials[i % len(serials)] if mix != "cached" else serials[i % 8]
        builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
            digest, key_hash, serial, hashes.SHA1()
        )
        if mix == "nonce":
            builder = builder.add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
        out.append(builder.build().public_bytes(serialization.Encoding.DER))
    return out


def _worker(mix: str, n: int, queue: mp.Queue[float]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pki = build_pki(Path(tmp), datetime.now(UTC))
        serials = [x509.random_serial_number() for _ in range(n)]
        for serial in serials:
            pki.status.record(pki.issuing, serial)
        responder = OcspResponder(
            [(pki.issuing, pki.ocsp_signer, pki.ocsp_key)], pki.status, SystemClock()
        )
        requests = _requests(mix, n, pki.issuing, serials)
        random.shuffle(requests)
        responder.respond(requests[0])  # warm-up
        start = time.perf_counter()
        for request in requests:
            responder.respond(request)
        queue.put(n / (time.perf_counter() - start))


def ocsp_rate(mix: str, n: int, processes: int) -> float:
    """Aggregate responses/s of `processes` independent responders running at once."""
    queue: mp.Queue[float] = mp.Queue()
    workers = [mp.Process(target=_worker, args=(mix, n, queue)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    rates = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    return sum(rates)


def openssl_sign_rate(processes: int) -> float:
    result = subprocess.run(
        ["openssl", "speed", "-seconds", "3", "-multi", str(processes), "ecdsap256"],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)", result.stdout)
    if match is None:
        raise RuntimeError(f"unexpected openssl speed output:\n{result.stdout}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="requests per process and mix")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    for processes in sorted({1, cores}):
        row: dict[str, object] = {"processes": processes}
        for mix in MIXES:
            row[f"{mix}_per_s"] = round(ocsp_rate(mix, args.n, processes))
        row["openssl_ecdsap256_sign_per_s"] = round(openssl_sign_rate(processes))
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"OCSP responses/s ({args.n} requests per process and mix; {cores} cores)")
    header = ["processes", *[f"{m}/s" for m in MIXES], "openssl sign/s"]
    print("  ".join(f"{h:>14}" for h in header))
    for row in rows:
        print("  ".join(f"{v:>14}" for v in row.values()))


if __name__ == "__main__":
    main()
