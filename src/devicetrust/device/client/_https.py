"""The device's HTTPS: stdlib `http.client` over TLS verified against the CA bundle the
device got at the factory (no system trust store, no proxy, hostname checked), optionally
presenting its client certificate (EST re-enrollment).

Answers become `Answer` values; problem+json refusals become `ProvisioningRefused` carrying
the server's `code`. Network and TLS failures become `ServerUnreachable`.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devicetrust.device.client._errors import ProvisioningRefused, ServerUnreachable

MAX_ANSWER = 1024 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: float | None

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ServerUnreachable("the server's answer is not JSON") from exc
        if not isinstance(value, dict):
            raise ServerUnreachable("the server's answer is not a JSON object")
        return value


def tls_context(ca_bundle: Path | str) -> ssl.SSLContext:
    """TLS 1.3 client context trusting only `ca_bundle` (PEM), hostname checked."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cafile=str(ca_bundle))
    return context


def request(
    context: ssl.SSLContext,
    url: str,
    body: bytes,
    *,
    content_type: str = "application/json",
    timeout: float = 30.0,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """POST `body` to `url` (https only); 2xx and 429 are returned, any other status raises
    `ProvisioningRefused` with the problem's code."""
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.hostname is None:
        raise ValueError(f"the server URL must be https://host[:port]/..., not {url!r}")
    connection = http.client.HTTPSConnection(
        parts.hostname, parts.port or 443, context=context, timeout=timeout
    )
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        sent = {"Content-Type": content_type, **(headers or {})}
        connection.request("POST", path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read(MAX_ANSWER)
        retry = response.getheader("Retry-After")
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        where = f"{parts.hostname}:{parts.port or 443}"
        raise ServerUnreachable(f"{where}: {type(exc).__name__}: {exc}") from exc
    finally:
        connection.close()
    answer = Answer(status, data, _seconds(retry))
    if 200 <= status < 300 or status == 429:
        return answer
    raise _refusal(answer)


def _seconds(header: str | None) -> float | None:
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        return None  # an HTTP-date: treat as no advice (the caller's own backoff applies)


def _refusal(answer: Answer) -> ProvisioningRefused:
    code, detail = f"http.{answer.status}", f"the server answered {answer.status}"
    try:
        problem = json.loads(answer.body)
    except (ValueError, UnicodeDecodeError):
        problem = None
    if isinstance(problem, dict):
        code = str(problem.get("code") or code)[:128]
        detail = str(problem.get("detail") or problem.get("title") or detail)[:500]
    return ProvisioningRefused(detail, code=code, status=answer.status)
