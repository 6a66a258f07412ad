"""The API under a real uvicorn server on a loopback port, driven by the real `curl`."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from devicetrust.auth import Scope
from devicetrust.runtime import Platform
from tests.api.wire import PROBLEM_TYPE
from tests.uvicorn_thread import served_in_thread

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl binary")


@dataclass
class Reply:
    status: int
    content_type: str
    body: str

    def json(self) -> object:
        return json.loads(self.body)


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    with served_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}"


def curl(
    url: str,
    *,
    token: str | None = None,
    method: str = "GET",
    data: str | None = None,
    extra: tuple[str, ...] = (),
) -> Reply:
    """Run curl; the token goes in on stdin (`-K -`), never on the command line."""
    config = f'header = "Authorization: Bearer {token}"\n' if token else ""
    args = ["curl", "-sS", "--max-time", "20", "-K", "-", "-X", method, *extra]
    if data is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", data]
    args += ["-w", "\n%{http_code} %{content_type}", url]
    done = subprocess.run(args, input=config, capture_output=True, text=True, check=True)
    body, _, trailer = done.stdout.rpartition("\n")
    status, _, content_type = trailer.partition(" ")
    return Reply(int(status), content_type, body)


def test_register_and_read_back_over_real_http(base_url: str, platform: Platform) -> None:
    token = platform.api_keys.create("curl", [Scope.ADMIN], actor="test")[1]
    spec = json.dumps({"model": "kuka-kr-16", "hardware_serials": {"controller": "CTL-42"}})
    created = curl(f"{base_url}/v1/physical-identities", token=token, method="POST", data=spec)
    assert created.status == 201, created.body
    unit = created.json()
    assert isinstance(unit, dict) and unit["state"] == "manufactured"

    read = curl(f"{base_url}/v1/physical-identities/{unit['physical_id']}", token=token)
    assert read.status == 200 and read.json() == unit
    assert read.content_type.startswith("application/json")

    missing = curl(f"{base_url}/v1/physical-identities/{uuid.uuid4()}", token=token)
    assert missing.status == 404 and missing.content_type.startswith(PROBLEM_TYPE)
    assert missing.json()["code"] == "identity.physical_not_found"  # type: ignore[index]

    bad = curl(f"{base_url}/v1/logical-identities/Not_A_Name", token=token)
    assert bad.status == 400 and bad.content_type.startswith(PROBLEM_TYPE)
    assert bad.json() == {
        "type": "urn:devicetrust:problem:identity.invalid_name",
        "title": "Bad Request",
        "status": 400,
        "detail": bad.json()["detail"],  # type: ignore[index]
        "code": "identity.invalid_name",
        "value": "Not_A_Name",
    }

    anonymous = curl(f"{base_url}/v1/physical-identities")
    assert anonymous.status == 401 and anonymous.content_type.startswith(PROBLEM_TYPE)


def test_chunked_upload_over_the_limit_is_cut_off(base_url: str, platform: Platform) -> None:
    """A streamed body with no Content-Length is counted as it arrives."""
    token = platform.api_keys.create("curl", [Scope.ADMIN], actor="test")[1]
    serials = {f"c{n}": "x" * 120 for n in range(60)}
    big = json.dumps({"model": "kuka", "hardware_serials": serials})
    reply = curl(
        f"{base_url}/v1/physical-identities",
        token=token,
        method="POST",
        data=big,
        extra=("-H", "Transfer-Encoding: chunked"),
    )
    assert reply.status == 413 and reply.content_type.startswith(PROBLEM_TYPE)
    assert platform.identity.list_physical() == []
