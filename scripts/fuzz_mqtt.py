#!/usr/bin/env python3
"""The MQTT decoder's long fuzz run: an alias of `scripts/fuzz.py --target mqtt` (see it).

    python scripts/fuzz_mqtt.py                          # until stopped (Ctrl-C) or a finding
    python scripts/fuzz_mqtt.py -max_total_time=3600     # one hour (atheris)
    python scripts/fuzz_mqtt.py --seconds 3600           # the same, atheris or hypothesis

Findings go to FUZZ_MQTT_WORK (default ./fuzz-mqtt-work); the corpus is tests/gateway/corpus/.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fuzz  # noqa: E402

if __name__ == "__main__":
    work = os.environ.get("FUZZ_MQTT_WORK", "fuzz-mqtt-work")
    sys.argv = [sys.argv[0], "--target", "mqtt", "--work", work, *sys.argv[1:]]
    sys.exit(fuzz.main())
