"""The fuzz targets: one pure function per parser that faces devices or operators, shared by
the coverage-guided long run (scripts/fuzz.py, atheris) and the short run in the test suite
(tests/fuzz/test_fuzz_targets.py).

Each takes raw bytes (decoded as UTF-8 with replacement where the parser takes text) and
lets through nothing but the parser's own typed error: any other exception, or an
AssertionError from a check here, is a finding.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devicetrust.deviceauth.errors import AlgorithmRefused, TokenMalformed
from devicetrust.deviceauth.hmac_format import decode_token as decode_hmac_token
from devicetrust.deviceauth.jwt_auth import _claimed_time, _fingerprint, read_header
from devicetrust.pki.csr import verify_csr
from devicetrust.pki.errors import (
    CsrBadSignature,
    CsrForbiddenRequest,
    CsrMalformed,
    CsrWeakSignature,
    WeakKey,
)
from devicetrust.provisioning.errors import MalformedEvidence
from devicetrust.provisioning.est import (
    EstBodyInvalid,
    decode_certs_only,
    decode_csr,
    decode_csrattrs,
    parse_basic,
    parse_bearer,
)
from devicetrust.provisioning.symmetric import decode_token as decode_provisioning_token
from tests.gateway.fuzz_target import one_input as mqtt_input

ROOT = Path(__file__).resolve().parent
CORPORA = ROOT / "corpus"


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def hmac_token(data: bytes) -> None:
    """`v=dt1&id=..&kv=..&sr=..&se=..[&n=..]&sig=..`: only TokenMalformed; what parses
    re-signs to the same signed part."""
    token = _text(data)
    try:
        parsed = decode_hmac_token(token)
    except TokenMalformed:
        return
    assert token.startswith(parsed.signed.decode("ascii") + "&sig=")
    assert len(parsed.mac) == 32


def provisioning_token(data: bytes) -> None:
    """`<claims>.<mac>` of symmetric-key provisioning: only MalformedEvidence."""
    try:
        claims_bytes, mac, claims = decode_provisioning_token(_text(data))
    except MalformedEvidence:
        return
    assert len(mac) == 32 and json.loads(claims_bytes) == claims


def _b64url_json(segment: str) -> object:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None  # the harness's own decoding; PyJWT refuses these later


def jwt_precheck(data: bytes) -> None:
    """The device-JWT checks before PyJWT verifies anything: the header's shape and
    algorithm, the x5t#S256 thumbprint, the claims' integer times."""
    token = _text(data)
    try:
        header = read_header(token)
        if "x5t#S256" in header:
            assert len(_fingerprint(header["x5t#S256"])) == 64
    except (TokenMalformed, AlgorithmRefused):
        pass
    parts = token.split(".")
    claims = _b64url_json(parts[1]) if len(parts) == 3 else None
    if isinstance(claims, dict):
        for name in ("exp", "iat", "nbf"):
            if name in claims:
                with contextlib.suppress(TokenMalformed):
                    _claimed_time(claims, name)


def csr(data: bytes) -> None:
    """`pki.csr.verify_csr`, PEM or DER: only its five refusals."""
    refusals = (CsrMalformed, CsrBadSignature, WeakKey, CsrWeakSignature, CsrForbiddenRequest)
    with contextlib.suppress(*refusals):
        verify_csr(data)


def est(data: bytes) -> None:
    """EST bodies and credentials: enrollment (base64 PKCS#10), csrattrs, certs-only, and the
    Authorization header parsers (None, never an exception)."""
    for decode in (decode_csr, decode_csrattrs, decode_certs_only):
        with contextlib.suppress(EstBodyInvalid):
            decode(data)
    header = _text(data)
    basic = parse_basic(header)
    assert basic is None or all(basic)
    bearer = parse_bearer(header)
    assert bearer is None or bearer


def mqtt(data: bytes) -> None:
    """The MQTT decoder (tests/gateway/fuzz_target.py)."""
    mqtt_input(data)


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    corpus: Path
    max_len: int


TARGETS = {
    t.name: t
    for t in (
        Target("hmac_token", hmac_token, CORPORA / "hmac_token", 1024),
        Target("provisioning_token", provisioning_token, CORPORA / "provisioning_token", 1200),
        Target("jwt_precheck", jwt_precheck, CORPORA / "jwt_precheck", 4200),
        Target("csr", csr, CORPORA / "csr", 4096),
        Target("est", est, CORPORA / "est", 4096),
        Target("mqtt", mqtt, ROOT.parent / "gateway" / "corpus", 4096),
    )
}


def seeds(target: Target) -> list[bytes]:
    return [p.read_bytes() for p in sorted(target.corpus.iterdir()) if p.suffix == ".bin"]
