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
import hashlib
import hmac
import pstats
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _support import database  # bench/_support.py
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import event

from devicetrust.domain.ids import PhysicalId
from devicetrust.identity import UnitSpec
from devicetrust.pki import CaRole, IssueRequest, Profile
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    AttestationKind,
    RegistrationRequest,
    challenge_message,
    encode_token,
)
from devicetrust.provisioning.symmetric import b64url
from devicetrust.runtime import Platform, Settings
from devicetrust.vault import Vault, generate_kek_text

Step = Callable[[], object]


def csr_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


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


def symmetric_steps(platform: Platform, n: int) -> list[Step]:
    shown = platform.provisioning.enrollments.create_symmetric_group(
        "prof-sym",
        Allocation(AllocationPolicy.POOL, pool_pattern=f"prof-sym-{{1..{n}}}"),
        actor="bench",
    )
    relax_hardware_key(platform, "prof-sym")
    units = platform.identity.register_batch([UnitSpec("bench", {})] * n, actor="bench")
    exp = datetime.now(UTC) + timedelta(minutes=30)
    steps: list[Step] = []
    for unit in units:
        key = hmac.digest(bytes(shown.key), unit.physical_id.encode(), hashlib.sha256)
        request = RegistrationRequest(
            physical_id=PhysicalId(unit.physical_id),
            method=AttestationKind.SYMMETRIC_KEY,
            csr=csr_of(ec.generate_private_key(ec.SECP256R1())),
            evidence={"token": encode_token(key, unit.physical_id, exp, secrets.token_urlsafe(16))},
            source="127.0.0.1",
        )
        steps.append(lambda r=request: platform.provisioning.provision(r))
    return steps


def x509_steps(platform: Platform, n: int) -> list[Step]:
    manufacturing = platform.pki.active_ca(CaRole.MANUFACTURING).ca_id
    platform.provisioning.enrollments.create_x509_group(
        "prof-x509",
        manufacturing,
        Allocation(AllocationPolicy.POOL, pool_pattern=f"prof-x509-{{1..{n}}}"),
        actor="bench",
    )
    relax_hardware_key(platform, "prof-x509")
    units = platform.identity.register_batch([UnitSpec("bench", {})] * n, actor="bench")
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in units]
    births = platform.pki.issue_batch(
        [
            IssueRequest(csr_of(k), u.physical_id, Profile.BIRTH)
            for k, u in zip(keys, units, strict=True)
        ],
        actor="bench",
    )
    steps: list[Step] = []
    for unit, key, birth in zip(units, keys, births, strict=True):
        csr = csr_of(ec.generate_private_key(ec.SECP256R1()))

        def step(
            pid: str = unit.physical_id, key: Any = key, pem: str = birth.pem, csr: bytes = csr
        ) -> object:
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
