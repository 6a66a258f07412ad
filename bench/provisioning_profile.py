"""Profile one provisioning through the service layer (no HTTP), in one thread: CPU time per
provisioning and SQL statements per provisioning, symmetric-key and X.509 attestation.

    python bench/provisioning_profile.py                  # PostgreSQL, 300 devices per method
    python bench/provisioning_profile.py --profile 25     # + the cProfile top 25 (cumulative)
    python bench/provisioning_profile.py --statements     # + each distinct SQL statement

Each device's material is prepared before the clock starts, as in `bench/provisioning.py`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _support import database  # bench/_support.py
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import event

from devicetrust.domain.ids import PhysicalId
from devicetrust.provisioning import (
    AttestationKind,
    RegistrationRequest,
    challenge_message,
)
from devicetrust.provisioning.symmetric import b64url
from devicetrust.runtime import Platform, Settings
from devicetrust.vault import Vault, generate_kek_text
from provisioning import csr_of, symmetric_group, x509_group  # bench/provisioning.py

Step = Callable[[], object]


def symmetric_steps(platform: Platform, n: int) -> list[Step]:
    steps: list[Step] = []
    for physical_id, _key, token in symmetric_group(platform, "prof-sym", n):
        request = RegistrationRequest(
            physical_id=PhysicalId(physical_id),
            method=AttestationKind.SYMMETRIC_KEY,
            csr=csr_of(ec.generate_private_key(ec.SECP256R1())),
            evidence={"token": token},
            source="127.0.0.1",
        )
        steps.append(lambda r=request: platform.provisioning.provision(r))
    return steps


def x509_steps(platform: Platform, n: int) -> list[Step]:
    steps: list[Step] = []
    for pid, key, pem in x509_group(platform, "prof-x509", n):
        csr = csr_of(ec.generate_private_key(ec.SECP256R1()))

        def step(pid: str = pid, key: Any = key, pem: str = pem, csr: bytes = csr) -> object:
            got = platform.provisioning.challenge(pid, "x509", source="127.0.0.1")
            message = challenge_message(got.challenge_id, got.payload["nonce"], pid, csr)
            evidence = {
                "challenge_id": got.challenge_id,
                "birth_chain": pem,
                "signature": b64url(key.sign(message, ec.ECDSA(hashes.SHA256()))),
            }
            request = RegistrationRequest(
                physical_id=PhysicalId(pid),
                method=AttestationKind.X509,
                csr=csr,
                evidence=evidence,
                source="127.0.0.1",
            )
            return platform.provisioning.provision(request)

        steps.append(step)
    return steps


def measure(
    name: str, steps: list[Step], statements: Counter[str], top: int, show: bool
) -> dict[str, float]:
    statements.clear()
    profiler = cProfile.Profile(time.process_time) if top else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for step in steps:
        step()
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = len(steps)
    row = {
        "cpu_ms": 1000 * cpu / n,
        "wall_ms": 1000 * wall / n,
        "statements": sum(statements.values()) / n,
    }
    print(
        f"{name:<14} {row['cpu_ms']:>8.2f} ms CPU {row['wall_ms']:>8.2f} ms wall "
        f"{row['statements']:>6.1f} SQL statements per provisioning"
    )
    if show:
        for sql, count in statements.most_common():
            print(f"  {count / n:5.2f}  {' '.join(sql.split())[:150]}")
    if profiler:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(top)
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(top)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--n", type=int, default=300, help="devices per method")
    parser.add_argument("--profile", type=int, default=0, help="cProfile: show the top N")
    parser.add_argument("--statements", action="store_true")
    args = parser.parse_args()
    statements: Counter[str] = Counter()
    with database(args.backend) as url, tempfile.TemporaryDirectory() as tmp:
        config = {
            "data_dir": Path(tmp),
            "database": {"url": url},
            "provisioning": {"attempt_burst": 10**6, "attempt_refill_per_minute": 10**6},
        }
        platform = Platform(
            Settings.model_validate(config), vault=Vault.from_encoded(generate_kek_text())
        )
        platform.pki.init_hierarchy(actor="bench")

        @event.listens_for(platform.db.engine, "before_cursor_execute")
        def _count(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
            statements[sql] += 1

        @event.listens_for(platform.db.engine, "commit")
        def _commit(_conn: Any) -> None:
            statements["COMMIT"] += 1

        for name, build in (("symmetric-key", symmetric_steps), ("x509", x509_steps)):
            steps = build(platform, args.n)
            measure(name, steps, statements, args.profile, args.statements)
        platform.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
