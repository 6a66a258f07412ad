"""Simulated hardware for the keystore tests: swtpm instances (one per module, or one per
test where a test restarts or damages its TPM)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.hardware import SwtpmProcess, require_swtpm


@pytest.fixture(scope="module")
def swtpm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwtpmProcess]:
    require_swtpm()
    process = SwtpmProcess(tmp_path_factory.mktemp("swtpm") / "state")
    yield process
    process.stop()


@pytest.fixture
def new_swtpm(tmp_path: Path) -> Iterator[Callable[[str], SwtpmProcess]]:
    """Starts fresh TPMs for one test (stopped at its end)."""
    require_swtpm()
    started: list[SwtpmProcess] = []

    def start(name: str) -> SwtpmProcess:
        started.append(SwtpmProcess(tmp_path / f"tpm-{name}"))
        return started[-1]

    yield start
    for process in started:
        process.stop()
