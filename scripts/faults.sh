#!/usr/bin/env bash
# Run the fault-injection tests of issue #8 on demand, long ones included, and print their
# figures (messages acknowledged vs stored, restarts, recovery times, crashed runs).
# Usage: scripts/faults.sh                 all fault tests (about 2 minutes)
#        scripts/faults.sh --fast          only those of the default suite (CI)
#        scripts/faults.sh [pytest args]   e.g. scripts/faults.sh -k kill_9
# The disk-full test mounts a tmpfs: it needs root, and is skipped otherwise. PostgreSQL
# tests use the server of DEVICETRUST_TEST_PG_URL (default 127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."

marker="faults"
if [[ "${1:-}" == "--fast" ]]; then
  marker="faults and not slow"
  shift
fi
exec python3 -m pytest tests/faults -m "$marker" -p no:cacheprovider -q -s -rsx "$@"
