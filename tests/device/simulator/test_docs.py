"""The runnable example of docs/simulator.md prints what the document says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "simulator.md"


def test_the_robot_arm_example_runs_as_written() -> None:
    block = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)[0]
    out = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    documented = re.findall(r"# (\{.*\})", block)[0]
    assert out[0] == documented
    assert len(out[1].split(",")) == 6
    assert out[2].startswith("Reaction(command='slow_down'")
