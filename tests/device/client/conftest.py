"""Fixtures of the device client's tests: one real `devicetrust serve` per session, and a
file keystore per device."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicetrust.device.keystore import Keystore, open_keystore
from tests.device.client.platform import Platform, running_platform


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    yield from running_platform(tmp_path_factory.mktemp("platform"))


@pytest.fixture
def keystore(tmp_path: Path) -> Iterator[Keystore]:
    store = open_keystore(f"file:{tmp_path / 'keystore.json'}", secret=os.urandom(32))
    yield store
    store.close()
