"""Benchmark: physical registrations/s and replacements/s, through the service layer and
through the HTTP API, on SQLite and PostgreSQL, next to a raw-database baseline measured in
the same run (one INSERT + COMMIT per row, no ORM, no audit, no outbox).

    python bench/identity.py                  # both backends, default sizes
    python bench/identity.py --backend sqlite --n 500
    python bench/identity.py --json           # machine-readable figures

PostgreSQL: a throw-away database on DEVICETRUST_TEST_PG_URL's server (default
127.0.0.1:5432), dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable

import httpx
import psycopg
import uvicorn
from _support import database, free_port  # bench/_support.py

from devicetrust.api import create_app
from devicetrust.auth import ApiKeyService
from devicetrust.domain import SystemClock
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.runtime import Platform, Settings
from devicetrust.store import Database, upgrade

Row = dict[str, object]


def rate(n: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def baseline(backend: str, url: str, n: int) -> float:
    """Raw driver: one INSERT and one COMMIT per row."""
    if backend == "sqlite":
        path = url.split("///", 1)[1]
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS raw (id TEXT PRIMARY KEY, model TEXT)")

        def run_sqlite() -> None:
            for _ in range(n):
                conn.execute("BEGIN")
                conn.execute("INSERT INTO raw VALUES (?, ?)", (str(uuid.uuid4()), "arm"))
                conn.execute("COMMIT")

        result = rate(n, run_sqlite)
        conn.close()
        return result
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as pg:
        pg.execute("CREATE TABLE IF NOT EXISTS raw (id TEXT PRIMARY KEY, model TEXT)")
        pg.commit()

        def run_pg() -> None:
            for _ in range(n):
                pg.execute("INSERT INTO raw VALUES (%s, %s)", (str(uuid.uuid4()), "arm"))
                pg.commit()

        return rate(n, run_pg)


def service_figures(url: str, n: int, threads: int) -> list[Row]:
    db = Database(url)
    upgrade(db)
    svc = IdentityService(db, SystemClock())
    spec = UnitSpec("kuka-kr-16", {"controller": "KRC4"})
    rows: list[Row] = []
    rows.append(
        {
            "what": "register, 1 per transaction",
            "rate": rate(n, lambda: [svc.register(spec, actor="bench") for _ in range(n)] and None),
        }
    )

    def threaded() -> None:
        per = n // threads
        workers = [
            threading.Thread(target=lambda: [svc.register(spec, actor="bench") for _ in range(per)])
            for _ in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    rows.append(
        {
            "what": f"register, 1 per transaction, {threads} threads",
            "rate": rate(n // threads * threads, threaded),
        }
    )
    batch = 100
    rows.append(
        {
            "what": f"register, batch of {batch} (factory)",
            "rate": rate(
                n * 4,
                lambda: (
                    [
                        svc.register_batch([spec] * batch, actor="bench")
                        for _ in range(n * 4 // batch)
                    ]
                    and None
                ),
            ),
        }
    )
    units = [u.physical_id for u in svc.register_batch([spec] * (n + 1), actor="bench")]
    svc.create_logical("bench-line-01", actor="bench")
    svc.bind("bench-line-01", units[0], actor="bench")

    def replace_all() -> None:
        for new in units[1:]:
            svc.replace("bench-line-01", new, actor="bench")

    rows.append({"what": "replace", "rate": rate(n, replace_all)})
    db.dispose()
    return rows


def http_figures(url: str, n: int) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate({"data_dir": tmp, "database": {"url": url}})
        platform = Platform(settings)
        _, token = ApiKeyService(platform.db, platform.clock).create(
            "bench", ["admin"], actor="bench"
        )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(platform), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        rows: list[Row] = []
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            body = {"model": "kuka-kr-16", "hardware_serials": {"controller": "KRC4"}}

            def register() -> None:
                for _ in range(n):
                    client.post("/v1/physical-identities", json=body).raise_for_status()

            rows.append({"what": "HTTP POST register", "rate": rate(n, register)})
            units: list[str] = []
            for start in range(0, n + 1, 1000):  # the API takes at most 1000 units a batch
                size = min(1000, n + 1 - start)
                resp = client.post("/v1/physical-identities/batch", json={"units": [body] * size})
                resp.raise_for_status()
                units += [u["physical_id"] for u in resp.json()["items"]]
            client.post("/v1/logical-identities", json={"name": "bench-http-01"}).raise_for_status()
            client.post(
                "/v1/logical-identities/bench-http-01/bind", json={"physical_id": units[0]}
            ).raise_for_status()

            def replace_all() -> None:
                for new in units[1:]:
                    client.post(
                        "/v1/logical-identities/bench-http-01/replace",
                        json={"new_physical_id": new},
                    ).raise_for_status()

            rows.append({"what": "HTTP POST replace", "rate": rate(n, replace_all)})
        server.should_exit = True
        thread.join(timeout=10)
        platform.close()
        return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--n", type=int, default=1000, help="operations per figure")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: list[Row] = []
    for backend in backends:
        with database(backend) as url:
            results.append(
                {
                    "backend": backend,
                    "what": "baseline: raw INSERT+COMMIT",
                    "rate": baseline(backend, url, args.n),
                }
            )
        with database(backend) as url:
            results += [
                {"backend": backend, **r} for r in service_figures(url, args.n, args.threads)
            ]
        with database(backend) as url:
            results += [{"backend": backend, **r} for r in http_figures(url, max(args.n // 2, 50))]
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return 0
    print(f"{'backend':<11} {'operation':<44} {'ops/s':>10}")
    for row in results:
        print(f"{row['backend']!s:<11} {row['what']!s:<44} {float(str(row['rate'])):>10,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
