"""The short fuzz run of the default suite: every target's kept corpus replayed, then a
derandomized hypothesis run of corpus mutations and random bytes through the same targets
as the long run (scripts/fuzz.py); the MQTT corpus is replayed by tests/gateway."""

from __future__ import annotations

import base64
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from devicetrust.provisioning.est import EstBodyInvalid, decode_certs_only
from tests.fuzz.engine import run
from tests.fuzz.targets import TARGETS, Target, seeds

ROOT = Path(__file__).resolve().parents[2]
PARSERS = [t for name, t in TARGETS.items() if name != "mqtt"]
CORPUS = [(t, p) for t in PARSERS for p in sorted(t.corpus.glob("*.bin"))]


@pytest.mark.parametrize("target", PARSERS, ids=lambda t: t.name)
def test_the_corpus_is_kept(target: Target) -> None:
    names = [p.name for p in target.corpus.glob("*.bin")]
    assert sum(n.startswith("valid") for n in names) >= 1
    assert sum(n.startswith("bad") for n in names) >= 3
    assert all(len(data) <= 4096 for data in seeds(target))


@pytest.mark.parametrize(
    ("target", "path"), CORPUS, ids=[f"{t.name}/{p.stem}" for t, p in CORPUS]
)
def test_corpus_input(target: Target, path: Path) -> None:
    target.run(path.read_bytes())


@pytest.mark.parametrize("target", PARSERS, ids=lambda t: t.name)
def test_a_short_hypothesis_run(target: Target) -> None:
    assert run(target, 1000) == 1000


def test_the_long_run_script_says_which_engine_it_uses(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fuzz.py"), "--target", "hmac_token",
         "--seconds", "1", "--work", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    if importlib.util.find_spec("atheris") is None:
        assert "atheris is not installed" in done.stderr
        assert "0 crashes (hypothesis)" in done.stdout


def test_found_a_cms_that_is_not_signed_data_is_a_typed_refusal() -> None:
    """Found by the `est` target: `pkcs7.load_der_pkcs7_certificates` raises
    `UnsupportedAlgorithm` for a CMS content type other than SignedData (here an OID 1.2)."""
    with pytest.raises(EstBodyInvalid):
        decode_certs_only(base64.b64encode(bytes.fromhex("300306012a")))
