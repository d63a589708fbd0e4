#!/usr/bin/env bash
# The main job: build tutti and its scsynth plugin, then play the trio example
# as a local session: a hub and three members, each a real scsynth with the
# plugin (JACK's dummy driver: no sound card needed), each with its own client
# playing one part. The hub admits only the invitations made for this run, so
# every member's link to it is encrypted (--open: an open hub, in clear). Prints each member's clock, its part, what it played and
# heard, late events, the node tree of every server, the coherence verdict,
# and where each server's recording (WAV) is.
#   scripts/run-session.sh [localsession.py options, e.g. --bars 8 --bpm 96 --out DIR]
#   TUTTI_MAIN=engine scripts/run-session.sh   the same engines without scsynth
#                                               (tutti session: members in one program)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/deps.sh"
# TUTTI_WERROR=OFF: build/ is shared with scripts/test-all.sh, which turns it on.
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUTTI_WERROR=OFF >/dev/null
cmake --build "$top/build" -j"$(nproc)" >/dev/null
if [ "${TUTTI_MAIN:-}" = engine ]; then
    exec "$top/build/tutti" session "$@"
fi
out=${TUTTI_OUT:-$top/build/session}
exec python3 "$top/scripts/localsession.py" --tutti "$top/build/tutti" --out "$out" --check "$@"
