"""Request bodies: JSON only, bounded in size however they are sent, and a body that is not
accepted changes nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message

from tests.api.conftest import MAX_BODY
from tests.api.wire import assert_problem, unit

BASE = "/v1/physical-identities"


def test_malformed_json_is_400(client: TestClient, writer: dict[str, str], unchanged: None) -> None:
    for raw in (b'{"model": "kuka",', b"\xff\xfe", b"\x80abc", b"[1, 2", b"{'model': 'x'}"):
        response = client.post(
            BASE, content=raw, headers={**writer, "Content-Type": "application/json"}
        )
        assert_problem(response, 400, "request.malformed_json")


def test_json_of_the_wrong_shape_is_422(
    client: TestClient, writer: dict[str, str], unchanged: None
) -> None:
    shapes: list[object] = [[], "kuka", 7, None]
    for shape in shapes:
        response = client.post(
            BASE, content=json.dumps(shape), headers={**writer, "Content-Type": "application/json"}
        )
        assert_problem(response, 422, "request.invalid_body")


def test_non_json_body_is_415(client: TestClient, writer: dict[str, str], unchanged: None) -> None:
    form = client.post(BASE, data={"model": "kuka"}, headers=writer)
    assert_problem(form, 415, "request.unsupported_media_type")
    untyped = client.post(BASE, content=b'{"model": "kuka"}', headers=writer)
    assert_problem(untyped, 415, "request.unsupported_media_type")


def test_oversized_body_is_413(client: TestClient, writer: dict[str, str], unchanged: None) -> None:
    big = {"model": "kuka", "hardware_serials": {f"c{n}": "x" * 100 for n in range(60)}}
    assert len(json.dumps(big)) > MAX_BODY
    response = client.post(BASE, json=big, headers=writer)
    assert_problem(response, 413, "request.body_too_large")


def test_oversized_streamed_body_is_413_without_content_length(
    client: TestClient, writer: dict[str, str], unchanged: None
) -> None:
    """A chunked upload declares no length: the limit counts the bytes as they arrive."""
    chunks = [b'{"model": "kuka", "hardware_serials": {'] + [
        f'"c{n}": "{"x" * 100}",'.encode() for n in range(60)
    ]

    def stream() -> Iterator[bytes]:
        yield from chunks

    request = client.build_request(
        "POST", BASE, content=stream(), headers={**writer, "Content-Type": "application/json"}
    )
    assert "content-length" not in request.headers
    assert_problem(client.send(request), 413, "request.body_too_large")


def test_a_lying_content_length_does_not_get_past_the_limit(
    app: FastAPI, writer: dict[str, str], unchanged: None
) -> None:
    """The limit is on the bytes received, whatever Content-Length claims."""
    body = json.dumps(unit(**{f"c{n}": "x" * 100 for n in range(60)})).encode()
    sent: list[dict[str, Any]] = []
    incoming = [
        {"type": "http.request", "body": body[i : i + 1000], "more_body": i + 1000 < len(body)}
        for i in range(0, len(body), 1000)
    ]

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(dict(message))

    headers = [(k.lower().encode(), v.encode()) for k, v in writer.items()]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": BASE,
        "raw_path": BASE.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-type", b"application/json"), (b"content-length", b"10")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
