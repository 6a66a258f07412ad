"""How `devicetrust demo` tells its story: numbered steps with the time since the start, and
waits for something the platform does asynchronously (a delivery, a disconnection), which
fail the demo with a clear message when it does not happen in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from rich.rule import Rule
from rich.text import Text

from devicetrust.cli import output
from devicetrust.domain.errors import DeviceTrustError

T = TypeVar("T")
WAIT_SECONDS = 20.0
POLL_SECONDS = 0.05


class DemoFailed(DeviceTrustError):
    """A step of the demo did not have the outcome it shows (exit status 1)."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__("demo.step_failed", message)


class Narrator:
    def __init__(self) -> None:
        self._started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def step(self, number: int, title: str, detail: str) -> None:
        output.out.print()
        header = Text(f"{number}. {title}", style="bold")
        header.append(f"  [+{self.elapsed():.1f} s]", style="dim")
        output.out.print(Rule(header, align="left"))
        output.out.print(Text(detail))

    def said(self, line: str) -> None:
        output.out.print(Text(f"  - {line}"))


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = WAIT_SECONDS) -> T:
    """`probe()` until it returns something other than None (or False); `DemoFailed` naming
    `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise DemoFailed(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"
