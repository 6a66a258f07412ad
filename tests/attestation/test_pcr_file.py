"""What `devicetrust attestation golden add --from-file` reads: the SHA-256 bank of
`tpm2_pcrread` output (tpm2-tools 3.x to 5.x layouts) or a JSON map, as `{"0": "<hex>"}`.
Real tpm2_pcrread output of a swtpm is read in `test_cli.py`; these are the edges."""

from __future__ import annotations

import pytest

from devicetrust.cli.attestation import parse_pcr_file
from devicetrust.domain.errors import InvalidInput

A, B = "3D45" + "00" * 30, "b2a8" + "11" * 30


@pytest.mark.parametrize(
    "text",
    [
        f"  sha1:\n    0 : 0x{'00' * 20}\n  sha256:\n    0 : 0x{A}\n    7 : 0x{B}\n",
        f"sha256:\n  0 : 0x{A}\n  7: 0x{B}\n",  # 5.x prints "10:" for two digits
        f"sha256 :\n  0  : {A}\n  7  : {B}\n",  # 3.x: no 0x, space before the colon
        f"# tpm2_pcrread sha256:0,7\n\n  sha256:\n    0 : 0x{A}\n    7 : 0x{B}\n  sha384:\n",
        f'{{"0": "0x{A}", "7": "{B}"}}',
        f'{{"sha256": {{"0": "{A}", "7": "{B}"}}, "sha1": {{}}}}',
    ],
)
def test_reads_the_sha256_bank(text: str) -> None:
    assert parse_pcr_file(text) == {"0": A, "7": B}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world",
        f"    0 : 0x{A}\n",  # no bank
        f"  sha1:\n    0 : 0x{'00' * 20}\n",  # no sha256 bank
        f"sha256:\n  0 : 0x{A}\n  0 : 0x{B}\n",  # twice
        "{not json",
        "[1, 2]",
        '{"sha256": 5}',
    ],
)
def test_refuses_other_text(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_pcr_file(text)
    assert refused.value.code == "attestation.invalid_pcr_file"
