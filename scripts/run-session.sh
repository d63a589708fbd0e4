#!/usr/bin/env bash
# The main job: build tutti and play a local session of several members through
# a hub, printing what a performer needs to see (members, clocks, L, coherence).
#   scripts/run-session.sh [tutti session options, e.g. --members 3 --duration 10]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/deps.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j"$(nproc)" --target tutti >/dev/null
exec "$top/build/tutti" session "$@"
