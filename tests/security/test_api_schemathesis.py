"""schemathesis against the server's own OpenAPI document, on a fresh SQLite platform.

Every operation is called with an admin API key, with positive (schema-valid) and negative
(schema-violating) data; in half the positive cases the path parameters name resources that
exist (the `known` fixture), so handlers past the 404 are reached. Each response must:

- not be a 5xx;
- have a status code, content type and body the document declares for the operation;
- if it is an error (4xx/5xx), be `application/problem+json` with `type`, `title`, `status`,
  `detail` and `code` as `devicetrust.api.problems` builds them;
- refuse what violates the document (4xx), name its methods in `Allow` on a 405, and refuse
  a request without the key (schemathesis' `ignored_auth` probes).

Not checked:
- `positive_data_acceptance`: path parameters are plain strings in the document (a unit
  id, a serial, a name); the server validates their format and answers a documented 400.
- `unsupported_method` and `allow_header_conformance` on paths two templates share
  (`/v1/policies/{scope:path}` also takes `relaxations/...` and `devices/...`; `POST
  /v1/feedback/{logical_name}` and `GET /v1/feedback/{feedback_id}` are one path): there
  the other template's operation answers its own 400/422 instead of a 405.

The default run is small (5 examples per operation and mode, under a minute); the `slow` variant runs
many more: `python3 -m pytest tests/security/test_api_schemathesis.py -m slow -p no:cacheprovider`.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case, CheckContext, CheckFunction, GenerationMode, Response
from schemathesis.checks import (
    allow_header_conformance,
    positive_data_acceptance,
    unsupported_method,
)
from schemathesis.core.failures import Failure

from devicetrust.api.problems import PROBLEM_CONTENT_TYPE, TYPE_PREFIX

DEFAULT_REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429"]
OVERLAPPED = re.compile(
    r"^/v1/(policies/(relaxations|devices)/|feedback/\{(logical_name|feedback_id)\}$)"
)
CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "phases": [Phase.explicit, Phase.generate],
    "suppress_health_check": list(HealthCheck),
}


class NotAProblem(Failure):
    """An error response that is not the problem+json our problems module builds."""

    def __init__(self, operation: str, why: str) -> None:
        super().__init__(
            operation=operation,
            title="Error response is not a devicetrust problem+json",
            message=why,
            code="not_a_problem",
        )

    @property
    def _unique_key(self) -> str:
        return self.message


def problem_json(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx/5xx is `application/problem+json` with the five members, consistent."""
    if response.status_code < 400:
        return None
    label = case.operation.label
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith(PROBLEM_CONTENT_TYPE):
        raise NotAProblem(label, f"content type {content_type!r}")
    body = response.json()
    if not isinstance(body, dict):
        raise NotAProblem(label, f"body is not an object: {body!r}")
    missing = {"type", "title", "status", "detail", "code"} - body.keys()
    if missing:
        raise NotAProblem(label, f"members missing: {sorted(missing)}")
    code = body["code"]
    if not (isinstance(code, str) and CODE.match(code)):
        raise NotAProblem(label, f"code {code!r} is not a stable dotted code")
    if body["type"] != f"{TYPE_PREFIX}{code}" or body["status"] != response.status_code:
        raise NotAProblem(label, f"type/status disagree with code/status line: {body}")
    if not (isinstance(body["title"], str) and body["title"]):
        raise NotAProblem(label, "empty title")
    if not (isinstance(body["detail"], str) and body["detail"]):
        raise NotAProblem(label, "empty detail")
    return True


@pytest.fixture(scope="module")
def api_schema(app: FastAPI) -> Any:
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], with_security_parameters=False
    )
    # A body past the size limit is refused with 413 before it is parsed: a rejection too.
    loaded.config.checks.negative_data_rejection.expected_statuses = [
        *DEFAULT_REJECTIONS,
        "413",
    ]
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module", autouse=True)
def tally() -> Iterator[Counter[str]]:
    """Cases sent, by generation mode; printed at the end (`-s`) for docs/security.md."""
    counts: Counter[str] = Counter()
    yield counts
    print(f"\nschemathesis cases: {sum(counts.values())} {dict(counts)}")


def _exercise(
    case: Case, known: dict[str, str], admin: dict[str, str], tally: Counter[str]
) -> None:
    tally[case.meta.generation.mode.value if case.meta else "explicit"] += 1
    # Half the positive cases, chosen by a digest of the generated values (reproducible,
    # unlike hash()), name existing resources; negative cases keep their invalid values.
    positive = case.meta is None or case.meta.generation.mode is GenerationMode.POSITIVE
    digest = zlib.crc32(repr(sorted(case.path_parameters.items())).encode())
    if positive and case.path_parameters and digest % 2:
        for name in case.path_parameters:
            if name in known:
                case.path_parameters[name] = known[name]
    excluded: list[CheckFunction] = [positive_data_acceptance]
    if OVERLAPPED.match(case.operation.path):
        excluded += [unsupported_method, allow_header_conformance]
    case.call_and_validate(
        headers=admin, additional_checks=[problem_json], excluded_checks=excluded
    )


@schema.parametrize()
@settings(max_examples=5, **_SETTINGS)
def test_every_operation(
    case: Case, known: dict[str, str], admin: dict[str, str], tally: Counter[str]
) -> None:
    _exercise(case, known, admin, tally)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@schema.parametrize()
@settings(max_examples=100, **_SETTINGS)
def test_every_operation_long(
    case: Case, known: dict[str, str], admin: dict[str, str], tally: Counter[str]
) -> None:
    _exercise(case, known, admin, tally)
