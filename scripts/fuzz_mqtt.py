#!/usr/bin/env python3
"""Coverage-guided fuzzing of the MQTT decoder with atheris (libFuzzer), by hand, for long runs.

    pip install atheris
    python scripts/fuzz_mqtt.py                          # until stopped (Ctrl-C) or a finding
    python scripts/fuzz_mqtt.py -max_total_time=3600     # one hour
    python scripts/fuzz_mqtt.py -runs=100000 -jobs=2     # any libFuzzer flag passes through

It starts from the corpus kept in tests/gateway/corpus/ (read only) and writes the inputs it
finds to a working directory (default: ./fuzz-mqtt-work, or FUZZ_MQTT_WORK); copy small
interesting ones into the corpus, where the test suite replays them
(tests/gateway/test_codec_fuzz.py). The target and its checks are tests/gateway/fuzz_target.py:
only the codec's own MqttError may escape, chunking must not change the outcome, and every
accepted packet must round-trip. A finding is written as crash-<hash> by libFuzzer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # import the target from tests/

with atheris.instrument_imports(include=["devicetrust", "tests"]):
    from tests.gateway.fuzz_target import one_input


def test_one_input(data: bytes) -> None:
    one_input(data)


def main() -> None:
    work = Path(os.environ.get("FUZZ_MQTT_WORK", "fuzz-mqtt-work"))
    work.mkdir(exist_ok=True)
    corpus = ROOT / "tests" / "gateway" / "corpus"
    flags = [a for a in sys.argv[1:] if a.startswith("-")]
    if not any(f.startswith("-max_len") for f in flags):
        flags.append("-max_len=4096")
    atheris.Setup([sys.argv[0], *flags, str(work), str(corpus)], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
