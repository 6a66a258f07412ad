"""Cross-checks with tpm2-tools, a TPM stack we did not write: it reads the same EK public area
and Name (swtpm_setup persisted the EKs), its `tpm2_makecredential` output activates in our
device keystore, and our server's MakeCredential activates with `tpm2_activatecredential`
for an AK it created itself from the same template."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from devicetrust.device.tpm import EndorsementKeyType, TpmKeystore
from devicetrust.domain.clock import SystemClock
from devicetrust.provisioning.tpm import make_challenge, register_endorsement_key
from tests.conftest import require_service
from tests.provisioning.tpm.conftest import Swtpm

AK_ATTRIBUTES = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign"
# swtpm_setup persists its EKs at the TCG handles (EK Credential Profile 2.0 §2.2.1.5)
PERSISTED_EK = {
    EndorsementKeyType.RSA_2048: "0x81010001",
    EndorsementKeyType.ECC_P384: "0x81010016",
}

Tools = Callable[..., str]


@pytest.fixture
def tools(device_tpm: Swtpm, tmp_path: Path) -> Tools:
    for tool in ("tpm2_readpublic", "tpm2_makecredential", "tpm2_activatecredential"):
        if shutil.which(tool) is None:
            require_service("tpm2-tools", f"{tool} not on PATH (apt install tpm2-tools)")
    env = {**os.environ, "TPM2TOOLS_TCTI": device_tpm.tcti}

    def run(*args: str) -> str:
        try:
            done = subprocess.run(
                args, check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=20
            )
            assert done.returncode == 0, f"{args[0]} failed: {done.stderr}"
            return done.stdout
        finally:  # without a resource manager tpm2-tools leaves its objects loaded
            subprocess.run(
                ["tpm2_flushcontext", "-t"], check=False, env=env, capture_output=True, timeout=20
            )

    return run


@pytest.mark.parametrize("ek_type", list(PERSISTED_EK), ids=lambda t: t.name)
def test_tools_read_the_same_ek_and_name(
    device_tpm: Swtpm, tools: Tools, tmp_path: Path, ek_type: EndorsementKeyType
) -> None:
    tools(
        "tpm2_readpublic", "-c", PERSISTED_EK[ek_type], "-f", "tss", "-o", "ek.pub", "-n", "ek.name"
    )
    with TpmKeystore(device_tpm.tcti, ek_type=ek_type) as keystore:
        ek = keystore.endorsement_key()

    assert (tmp_path / "ek.pub").read_bytes() == ek.public
    registered = register_endorsement_key(
        public=ek.public, certificate=None, trust=None, at=SystemClock().now()
    )
    assert registered.name == (tmp_path / "ek.name").read_bytes()


@pytest.mark.parametrize("ek_type", list(PERSISTED_EK), ids=lambda t: t.name)
def test_tools_credential_activates_in_our_keystore(
    device_tpm: Swtpm, tools: Tools, tmp_path: Path, ek_type: EndorsementKeyType
) -> None:
    tss = pytest.importorskip("tpm2_pytss")
    with TpmKeystore(device_tpm.tcti, ek_type=ek_type) as keystore:
        ek = keystore.endorsement_key()
        ak_public = keystore.attestation_key_public()
    (tmp_path / "ek.pub").write_bytes(ek.public)
    secret = os.urandom(32)
    (tmp_path / "secret.bin").write_bytes(secret)
    ak_name = make_challenge(ek.public, ak_public).ak_name  # the Name our server computes

    tools(
        "tpm2_makecredential", "--tcti", "none", "-u", "ek.pub", "-s", "secret.bin",
        "-n", ak_name.hex(), "-o", "cred.blob",
    )  # fmt: skip
    blob, encrypted = tss.utils.tools_to_credential((tmp_path / "cred.blob").read_bytes())
    with TpmKeystore(device_tpm.tcti, ek_type=ek_type) as keystore:
        recovered = keystore.activate_credential(bytes(blob.marshal()), bytes(encrypted.marshal()))
    assert recovered == secret


@pytest.mark.parametrize("ek_type", list(PERSISTED_EK), ids=lambda t: t.name)
def test_our_credential_activates_in_tpm2_tools(
    device_tpm: Swtpm, tools: Tools, tmp_path: Path, ek_type: EndorsementKeyType
) -> None:
    tss = pytest.importorskip("tpm2_pytss")
    with TpmKeystore(device_tpm.tcti, ek_type=ek_type) as keystore:
        ek = keystore.endorsement_key()
        ak_public = keystore.attestation_key_public()
    challenge = make_challenge(ek.public, ak_public)
    blob, _ = tss.types.TPM2B_ID_OBJECT.unmarshal(challenge.credential_blob)
    encrypted, _ = tss.types.TPM2B_ENCRYPTED_SECRET.unmarshal(challenge.encrypted_secret)
    (tmp_path / "cred.blob").write_bytes(tss.utils.credential_to_tools(blob, encrypted))

    # tpm2-tools derives the same primary AK from the same template
    tools(
        "tpm2_createprimary", "-C", "e", "-G", "ecc256:ecdsa-sha256:null", "-a", AK_ATTRIBUTES,
        "-c", "ak.ctx",
    )  # fmt: skip
    tools("tpm2_readpublic", "-c", "ak.ctx", "-n", "ak.name")
    assert (tmp_path / "ak.name").read_bytes() == challenge.ak_name

    if ek_type is EndorsementKeyType.RSA_2048:  # low range: the EK policy, PolicySecret(E)
        tools("tpm2_startauthsession", "--policy-session", "-S", "session.ctx")
        try:
            tools("tpm2_policysecret", "-S", "session.ctx", "-c", "e")
            tools(
                "tpm2_activatecredential", "-c", "ak.ctx", "-C", PERSISTED_EK[ek_type],
                "-i", "cred.blob", "-o", "secret.out", "-P", "session:session.ctx",
            )  # fmt: skip
        finally:
            tools("tpm2_flushcontext", "session.ctx")
    else:  # high range: userWithAuth with an empty authValue
        tools(
            "tpm2_activatecredential", "-c", "ak.ctx", "-C", PERSISTED_EK[ek_type],
            "-i", "cred.blob", "-o", "secret.out",
        )  # fmt: skip
    assert (tmp_path / "secret.out").read_bytes() == challenge.expected_secret
