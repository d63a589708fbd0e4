#!/usr/bin/env bash
# Each server protects its own speakers (issue 22, item 6), judged on
# recordings: a part at amplitude 30 on bus 0 clips a server that plays it
# solo, and in a session it is limited to the ceiling on every server, its
# own and the others', while the others' sound stays whole; a member mutes
# it on its own server only (monitoring), and the server check and the
# journals stay identical. Both servers join a hub that needs invitations:
# one from its environment (TUTTI_INVITE), one with `tutti join --invite`.
# The session and its checks are in guard_session.py.
# Skips (exit 0) only when scsynth, JACK or the plugin are not there at all.
set -u
. "$(dirname "$0")/lib.sh"

PLUGIN_DIR=${TUTTI_PLUGIN_DIR:-$(cd "$(dirname "$TUTTI")" && pwd)/plugin}
for tool in scsynth jackd jack_wait python3; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (scripts/deps.sh installs it)"; exit 0; }
done
[ -f "$PLUGIN_DIR/TuttiProxy.so" ] || { echo "SKIP: no plugin at $PLUGIN_DIR (TUTTI_BUILD_PLUGIN=OFF?)"; exit 0; }

horizon=200
sanitized && horizon=400
python3 "$(dirname "$0")/guard_session.py" --tutti "$TUTTI" --plugin-dir "$PLUGIN_DIR" \
    --out "$WORK/guard" --horizon $horizon >"$WORK/guard.log" 2>&1
rc=$?
grep -v '^{' "$WORK/guard.log"
[ "$rc" = 0 ] || fail "the guard did not hold (see the problems above)"
ok "a part at amplitude 30 clipped a solo server; in the session it stayed at the ceiling on both servers, the other part whole; muted on one server only; server check and journals identical"
