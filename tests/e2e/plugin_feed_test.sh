#!/usr/bin/env bash
# The plugin's session feed (docs/plugin.md, "The session feed") with two real
# scsynth servers, the plugin and a hub on loopback, and Python clients that
# subscribe on each proxy: see feed_check.py for every check.
# Skips (exit 0) only when scsynth, JACK or the plugin are not there at all.
set -u
. "$(dirname "$0")/lib.sh"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
PLUGIN_DIR=${TUTTI_PLUGIN_DIR:-$(cd "$(dirname "$TUTTI")" && pwd)/plugin}
for tool in scsynth jackd jack_wait python3; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (scripts/deps.sh installs it)"; exit 0; }
done
[ -f "$PLUGIN_DIR/TuttiProxy.so" ] || { echo "SKIP: no plugin at $PLUGIN_DIR (TUTTI_BUILD_PLUGIN=OFF?)"; exit 0; }

sc_port # only for its clean-up of what killed servers leave in /dev/shm
start_jackd -r -d dummy -r 48000 -p 256
# L: the sanitizer stages run every process several times slower
L=100
sanitized && L=400
LEAD=800
start_hub --session feed --horizon $L --change-lead $LEAD
python3 "$TOP/tests/e2e/feed_check.py" --tutti "$TUTTI" --plugin-dir "$PLUGIN_DIR" \
    --work "$WORK" --hub "$HUB_URL" --change-lead $LEAD || fail "the session feed (see above)"
stop_hub
ok "the session feed"
