"""Benchmark: device-key signatures/s per keystore backend, beside baselines measured in the
same run.

    python bench/keystore.py                 # every backend the machine has
    python bench/keystore.py --n 500 --json

Figures (one process, one thread; ECDSA P-256 over SHA-256, DER signatures):
  baseline cryptography      `cryptography`'s in-memory P-256 sign (the key in this process)
  baseline openssl speed     `openssl speed -seconds 2 ecdsap256`, its sign/s column
  file: sign                 the file keystore's key (decrypted once at `key()`): cryptography
  file: open                 opening the keystore file (scrypt N=2**15 of the device secret,
                             AES-GCM check), per second
  tpm2: sign (swtpm)         the TPM keystore on swtpm without a resource manager: per
                             signature CreatePrimary(SRK) + Load + Sign + 2 FlushContext
  pkcs11: sign (SoftHSM2)    C_Sign with CKM_ECDSA on a SHA-256 digest computed here

swtpm and SoftHSM2 are software: a discrete TPM signs in tens of milliseconds, so a real
device's tpm2: figure is far lower; what matters on a device is the JWT rate it needs
(one token per connection), not signatures in bulk.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hardware import SOFTHSM_MODULE, SwtpmProcess, init_softhsm_token

from devicetrust.device.keystore import DeviceKey, open_keystore

MESSAGE = b"devicetrust bench: a JWT signing input of typical length " * 3
SECRET = b"bench-device-secret-0123456789"


def rate(n: int, call: Callable[[], object]) -> float:
    """Calls/s over n calls after one untimed warm-up."""
    call()
    start = time.perf_counter()
    for _ in range(n):
        call()
    return n / (time.perf_counter() - start)


def openssl_speed() -> float:
    """The sign/s column of `openssl speed ecdsap256` (one core)."""
    out = subprocess.run(
        ["openssl", "speed", "-seconds", "2", "ecdsap256"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError("cannot read openssl speed's output")
    return float(match.group(1))


def key_rate(key: DeviceKey, n: int) -> float:
    return rate(n, lambda: key.sign(MESSAGE))


def measure(n: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    private = ec.generate_private_key(ec.SECP256R1())
    figures["baseline cryptography"] = rate(
        n, lambda: private.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    )
    figures["baseline openssl speed"] = openssl_speed()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        uri = f"file:{root / 'keystore.json'}"
        with open_keystore(uri, secret=SECRET) as store:
            figures["file: sign"] = key_rate(store.create_key("bench"), n)
        figures["file: open"] = rate(10, lambda: open_keystore(uri, secret=SECRET).close())
        tpm = SwtpmProcess(root / "tpm")
        try:
            with open_keystore(f"tpm2:{tpm.tcti}?dir={root / 'blobs'}") as store:
                figures["tpm2: sign (swtpm)"] = key_rate(
                    store.create_key("bench"), max(n // 10, 10)
                )
        finally:
            tpm.stop()
        token = init_softhsm_token(root / "softhsm", "bench")
        os.environ["SOFTHSM2_CONF"] = str(token.conf)
        module = f"pkcs11:module={SOFTHSM_MODULE};token={token.label}"
        with open_keystore(module, secret=token.pin.encode()) as store:
            figures["pkcs11: sign (SoftHSM2)"] = key_rate(store.create_key("bench"), n)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=2_000, help="signatures per figure (tpm2: n/10)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.n)
    if args.json:
        print(json.dumps({name: round(value, 1) for name, value in figures.items()}))
        return
    print(f"device-key signatures/s, one core ({args.n} per figure)")
    for name, value in figures.items():
        print(f"  {name:<26} {value:>10,.1f}/s")


if __name__ == "__main__":
    main()
