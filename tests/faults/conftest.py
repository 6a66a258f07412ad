"""Fault-injection tests (issue #8): registered as the `faults` marker, run on demand by
`scripts/faults.sh`; the fast ones also run in the default suite, the long ones are `slow`."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from tests.conftest import pg_database_url
from tests.pki.conftest import bound_unit, unit
from tests.provisioning.conftest import service, units, vault

# the CA and provisioning suites' fixtures, used by the crash tests
__all__ = ["bound_unit", "service", "unit", "units", "vault"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: fault-injection tests (scripts/faults.sh)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """A new, migrated PostgreSQL database for this test alone (the shared `pg_database_url`
    is one per session; a server under test initialises its database itself)."""
    yield from inspect.unwrap(pg_database_url)()
