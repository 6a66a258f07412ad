"""Benchmark: security-policy evaluations per second, single core, next to baselines
measured in the same run.

    pure      resolve() of fleet + enrollment + device layers with a relaxation, then
              allowed + check_tls + source_allowed + check_key; baseline: the same four
              decisions as bare set/ipaddress lookups on a ready-made dict
    lookup    PolicyService.effective(physical_id) from the database (unit, registration,
              layers, live relaxations); baseline: one primary-key SELECT of the unit row
    posture   fleet posture report, units assessed per second

    python bench/policy.py                      # both backends
    python bench/policy.py --backend sqlite --units 2000 --json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address, ip_network

from _support import database  # bench/_support.py
from sqlalchemy import select

from devicetrust.domain import SystemClock
from devicetrust.domain.ids import PhysicalId
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.policy import (
    FLEET,
    Layer,
    PolicyField,
    PolicyScope,
    PolicyService,
    Relaxation,
    ScopeKind,
    TlsVersion,
    allowed,
    check_key,
    check_tls,
    parse_value,
    resolve,
    source_allowed,
)
from devicetrust.store import Database, upgrade
from devicetrust.store.models import PhysicalIdentityRow

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
PID = PhysicalId("c2c38155-b0d2-48b6-82fd-22fe3b316224")


def rate(n: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def pure(n: int) -> dict[str, float]:
    layers = [
        Layer(FLEET, {PolicyField.MAX_CERTIFICATE_LIFETIME: timedelta(hours=12)}),
        Layer(
            PolicyScope(ScopeKind.ENROLLMENT, "line-03"),
            {
                PolicyField.ALLOWED_NETWORKS: parse_value(
                    PolicyField.ALLOWED_NETWORKS, "10.3.0.0/16"
                )
            },
        ),
        Layer(PolicyScope(ScopeKind.DEVICE, PID), {PolicyField.CONNECTIONS_PER_MINUTE: 4}),
    ]
    relaxation = Relaxation(
        "r1",
        PolicyField.MIN_TLS_VERSION,
        TlsVersion.TLS_1_2,
        FLEET,
        "legacy firmware",
        NOW - timedelta(hours=1),
        "bench",
        NOW + timedelta(days=1),
    )

    def evaluate() -> None:
        effective = resolve(layers, [relaxation], NOW, physical_id=PID, enrollment="line-03")
        assert allowed(effective, "mtls")
        assert check_tls(effective, "TLSv1.3", "TLS_AES_128_GCM_SHA256")
        assert source_allowed(effective, "10.3.1.2")
        assert check_key(effective, "ec-p256", 256, True)

    ready = {
        "methods": {"mtls", "jwt"},
        "suites": {"TLS_AES_128_GCM_SHA256"},
        "nets": [ip_network("10.3.0.0/16")],
        "keys": {"ec-p256"},
    }

    def raw() -> None:
        assert "mtls" in ready["methods"]  # type: ignore[operator]
        assert "TLS_AES_128_GCM_SHA256" in ready["suites"]  # type: ignore[operator]
        assert any(ip_address("10.3.1.2") in net for net in ready["nets"])  # type: ignore[attr-defined]
        assert "ec-p256" in ready["keys"]  # type: ignore[operator]

    return {"policy_evaluations_per_s": rate(n, evaluate), "baseline_per_s": rate(n, raw)}


def backend_figures(backend: str, units: int, lookups: int) -> dict[str, float]:
    with database(backend) as url:
        db = Database(url)
        upgrade(db)
        clock = SystemClock()
        registry = IdentityService(db, clock)
        made = registry.register_batch(
            [UnitSpec("arm", {"c": str(i)}) for i in range(units)], actor="bench"
        )
        policy = PolicyService(db, clock)
        policy.set("fleet", {"max_certificate_lifetime": "12h"}, actor="bench")
        policy.relax(
            "min_tls_version",
            "1.2",
            "fleet",
            reason="bench relaxation",
            expires="1d",
            actor="bench",
        )
        pid = made[0].physical_id

        def unit_row() -> None:
            with db.read() as session:
                session.execute(
                    select(PhysicalIdentityRow).where(PhysicalIdentityRow.id == pid)
                ).scalar_one()

        figures = {
            "effective_per_s": rate(lookups, lambda: policy.effective(pid) and None),
            "baseline_select_per_s": rate(lookups, unit_row),
        }
        start = time.perf_counter()
        report = policy.posture.fleet()
        figures["posture_units_per_s"] = report.units / (time.perf_counter() - start)
        db.dispose()
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--n", type=int, default=20_000, help="pure evaluations")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out: dict[str, object] = {"pure": pure(args.n)}
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        out[backend] = backend_figures(backend, args.units, args.lookups)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for section, figures in out.items():
        assert isinstance(figures, dict)
        for name, value in figures.items():
            print(f"{section:8} {name:28} {value:12,.0f}")


if __name__ == "__main__":
    main()
