"""Benchmark: device authentications/s on one core, each beside the raw primitive it rests
on, measured in the same run.

    python bench/auth.py                     # SQLite and PostgreSQL
    python bench/auth.py --backend sqlite --n 5000 --json
    python bench/auth.py --backend postgres --threads 16

Figures per backend (one process, one thread, `DeviceAuthService` over a real CA):
  baseline hmac.digest       stdlib HMAC-SHA256 over a token's signed bytes
  baseline ecdsa verify      `cryptography` P-256 ECDSA verify (DER signature)
  hmac token (core)          `decode_token` + constant-time MAC check (sans-I/O, no database)
  hmac token                 the service: parse, key version + unit state + logical identity
                             in one query, unseal the key (AES-GCM), MAC, time, state; no nonce
  hmac token + nonce         the same with a nonce spent per token (group commit, one thread)
  jwt ES256 (decode)         PyJWT decode with the pinned algorithm and a parsed key
  jwt ES256                  the service: header, key + unit query, PyJWT verify, claims,
                             jti spent (group commit, one thread)
  ..., N thr, per-token INSERT   `--threads` N threads share the tokens; each spent nonce /
                             jti is its own INSERT transaction (the ledger before group commit)
  ..., N thr, group commit   the same with the ledger's group commit: concurrent spends are
                             one `INSERT ... ON CONFLICT DO NOTHING RETURNING` per batch
                             (and again over the 1 s cache)
  mtls chain                 the service: `DeviceCertVerifier` (path building, EKU, time) and
                             the revocation status of leaf and issuing CA from the database,
                             then the unit query
  ..., cache 1 s             the same with `cache_ttl` / `status_ttl` of 1 s: key rows, unit
                             state and certificate status served from memory for up to 1 s
                             (spent nonces / jtis are still written every time)

Targets (issue 5): HMAC tokens >= 100k/s per core, ES256 JWT >= 10k/s per core, cached
chain validation >= 10k/s per core; the figures below say which path meets which.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _support import database  # bench/_support.py: throw-away databases
from tests.pki.certs import make_csr

from devicetrust.deviceauth import DeviceAuthService, device_verifier, encode_token, key_id_of
from devicetrust.deviceauth.hmac_format import decode_token, mac_matches
from devicetrust.domain import DeviceState, SystemClock
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import Keyring, PkiService, Profile
from devicetrust.pki.keys import KekPassword
from devicetrust.store import Database, upgrade
from devicetrust.vault import Vault

ACTOR = "bench"
RESOURCE = "mqtt.example.com"


def rate(items: Sequence[Any], call: Callable[[Any], object]) -> float:
    """Calls/s over `items[1:]`; `items[0]` is an untimed warm-up (single-use items differ)."""
    call(items[0])
    start = time.perf_counter()
    for item in items[1:]:
        call(item)
    return (len(items) - 1) / (time.perf_counter() - start)


def threaded_rate(items: Sequence[Any], call: Callable[[Any], object], threads: int) -> float:
    """Calls/s over `items[1:]` shared by `threads` threads released together (the service
    path under concurrent devices); `items[0]` is an untimed warm-up."""
    call(items[0])
    shares = [items[1 + i :: threads] for i in range(threads)]
    start = threading.Barrier(threads + 1)

    def work(share: Sequence[Any]) -> None:
        start.wait()
        for item in share:
            call(item)

    with ThreadPoolExecutor(threads) as pool:
        done = [pool.submit(work, share) for share in shares]
        start.wait()
        began = time.perf_counter()
        for future in done:
            future.result()
        return (len(items) - 1) / (time.perf_counter() - began)


def baselines(n: int) -> dict[str, float]:
    key = os.urandom(32)
    message = b"v=dt1&id=" + str(uuid.uuid4()).encode() + b"&kv=1&sr=mqtt.example.com&se=1"
    private = ec.generate_private_key(ec.SECP256R1())
    signature = private.sign(message, ec.ECDSA(hashes.SHA256()))
    public = private.public_key()
    return {
        "baseline hmac.digest": rate([message] * n, lambda m: hmac.digest(key, m, hashlib.sha256)),
        "baseline ecdsa verify": rate(
            [signature] * n, lambda s: public.verify(s, message, ec.ECDSA(hashes.SHA256()))
        ),
    }


def _core_check(key: bytearray, token: str) -> bool:
    parsed = decode_token(token)
    return mac_matches(key, parsed.signed, parsed.mac)


def _jwts(key: ec.EllipticCurvePrivateKey, pid: str, kid: str, now: int, n: int) -> list[str]:
    claims = {"sub": pid, "aud": RESOURCE, "iat": now, "exp": now + 1800}
    return [
        jwt.encode(
            {**claims, "jti": uuid.uuid4().hex}, key, algorithm="ES256", headers={"kid": kid}
        )
        for _ in range(n)
    ]


def service_rates(url: str, n: int, threads: int) -> dict[str, float]:
    clock = SystemClock()
    db = Database(url)
    upgrade(db)
    with tempfile.TemporaryDirectory() as tmp, Vault.from_key(os.urandom(32)) as vault:
        keyring = Keyring(Path(tmp) / "ca", password=KekPassword(vault))
        pki = PkiService(db, clock, keyring)
        hierarchy = pki.init_hierarchy(actor=ACTOR)
        identity = IdentityService(db, clock)
        unit = identity.register(UnitSpec("arm-r7", {}), actor=ACTOR)
        identity.create_logical("line-03-left-welding-12", actor=ACTOR)
        identity.bind("line-03-left-welding-12", unit.physical_id, actor=ACTOR)
        identity.set_state(unit.physical_id, DeviceState.ACTIVE, actor=ACTOR)
        auth = DeviceAuthService(db, clock, vault, cert_verifier=device_verifier(pki, clock))
        # The "before": one INSERT transaction per spent nonce / jti.
        per_token = DeviceAuthService(db, clock, vault, group_commit=False)
        ttl = timedelta(seconds=1)
        cached = DeviceAuthService(
            db,
            clock,
            vault,
            cert_verifier=device_verifier(pki, clock, status_ttl=ttl),
            cache_ttl=ttl,
        )
        pid = unit.physical_id
        out: dict[str, float] = {}
        concurrent = (
            ("per-token INSERT", per_token),
            ("group commit", auth),
            ("group commit, cache 1 s", cached),
        )

        shown = auth.token_keys.rotate(pid, actor=ACTOR)
        expires = clock.now() + timedelta(minutes=30)
        token = encode_token(shown.key, pid, 1, RESOURCE, expires)
        out["hmac token (core)"] = rate([token] * n, lambda t: _core_check(shown.key, t))
        out["hmac token"] = rate(
            [token] * n, lambda t: auth.authenticate_hmac_token(t, resource=RESOURCE)
        )
        out["hmac token, cache 1 s"] = rate(
            [token] * n, lambda t: cached.authenticate_hmac_token(t, resource=RESOURCE)
        )
        single_use = [
            encode_token(shown.key, pid, 1, RESOURCE, expires, uuid.uuid4().hex)
            for _ in range(n + 1)
        ]
        out["hmac token + nonce"] = rate(
            single_use, lambda t: auth.authenticate_hmac_token(t, resource=RESOURCE)
        )
        for name, service in concurrent:
            fresh = [
                encode_token(shown.key, pid, 1, RESOURCE, expires, uuid.uuid4().hex)
                for _ in range(n + 1)
            ]
            out[f"hmac + nonce, {threads} thr, {name}"] = threaded_rate(
                fresh,
                lambda t, a=service: a.authenticate_hmac_token(t, resource=RESOURCE),
                threads,
            )
        shown.close()

        device_key = ec.generate_private_key(ec.SECP256R1())
        auth.public_keys.register(
            pid,
            device_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
            actor=ACTOR,
        )
        kid = key_id_of(device_key.public_key())
        now = int(clock.now().timestamp())
        tokens = _jwts(device_key, pid, kid, now, n + 1)
        public = device_key.public_key()
        out["jwt ES256 (decode)"] = rate(
            tokens,
            lambda t: jwt.decode(
                t, public, algorithms=["ES256"], audience=RESOURCE, options={"verify_exp": False}
            ),
        )
        out["jwt ES256"] = rate(tokens, lambda t: auth.authenticate_jwt(t, audience=RESOURCE))
        for name, service in concurrent:
            out[f"jwt ES256, {threads} thr, {name}"] = threaded_rate(
                _jwts(device_key, pid, kid, now, n + 1),
                lambda t, a=service: a.authenticate_jwt(t, audience=RESOURCE),
                threads,
            )
        again = _jwts(device_key, pid, kid, now, n + 1)
        out["jwt ES256, cache 1 s"] = rate(
            again, lambda t: cached.authenticate_jwt(t, audience=RESOURCE)
        )

        issued = pki.issue_from_csr(make_csr(device_key), pid, Profile.DEVICE, actor=ACTOR)
        chain = [issued.certificate.public_bytes(Encoding.DER), hierarchy.issuing.der]
        out["mtls chain"] = rate([chain] * max(n // 5, 1), auth.authenticate_certificate)
        out["mtls chain, cache 1 s"] = rate([chain] * n, cached.authenticate_certificate)
        pki.close()
        keyring.close()
    db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--n", type=int, default=5_000, help="authentications per figure")
    parser.add_argument(
        "--threads", type=int, default=8, help="threads for the concurrent single-use figures"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    figures: dict[str, dict[str, float]] = {"primitives": baselines(args.n * 4)}
    for backend in backends:
        with database(backend) as url:
            figures[backend] = service_rates(url, args.n, max(args.threads, 1))
    if args.json:
        print(json.dumps({k: {m: round(v) for m, v in d.items()} for k, d in figures.items()}))
        return
    print(f"device authentications/s, one core ({args.n} per figure; mtls: {args.n // 5})")
    for section, values in figures.items():
        print(f"[{section}]")
        for name, value in values.items():
            print(f"  {name:<46} {value:>10,.0f}/s")


if __name__ == "__main__":
    main()
