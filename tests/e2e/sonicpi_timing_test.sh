#!/usr/bin/env bash
# Three real headless Sonic Pi 3.2 servers keep time in one session
# (tests/e2e/sonicpi/timing.py): live_loops of 1, 2 and 4 bars with
# tutti_sync at the top (samples, with_fx, a long controlled note), a tempo
# change (tutti_bpm 132) from the conductor halfway, then two members leave,
# play alone and run the same code again. Fails on any silent bar, any note
# off the session's grid (the new tempo's from the agreed beat), any `late`
# line in a scsynth log, any Sonic Pi error, anything of a part left on the
# others' servers after it left, or a journal lost.
# CI plays 40 s; the acceptance run is 3 minutes (docs/sonicpi.md):
#   TUTTI_SONICPI_PLAY=180 bash tests/e2e/sonicpi_timing_test.sh build/tutti
# Skips (exit 0) when Sonic Pi, Ruby, scsynth, JACK or the plugin are missing.
set -u
. "$(dirname "$0")/lib.sh"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
PLUGIN_DIR=${TUTTI_PLUGIN_DIR:-$(cd "$(dirname "$TUTTI")" && pwd)/plugin}
for tool in ruby scsynth jackd jack_wait python3; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (scripts/deps.sh installs it)"; exit 0; }
done
[ -f /usr/lib/sonic-pi/app/server/ruby/bin/sonic-pi-server.rb ] ||
    { echo "SKIP: Sonic Pi is not installed (Debian sonic-pi-server; scripts/deps.sh)"; exit 0; }
[ -f "$PLUGIN_DIR/TuttiProxy.so" ] || { echo "SKIP: no plugin at $PLUGIN_DIR"; exit 0; }
# the sanitizer stages leave the Sonic Pi sessions out (the plugin inside
# Sonic Pi's scsynth is never built with a sanitizer)
if [ "${TUTTI_SONICPI_SESSION:-1}" = 0 ]; then
    echo "SKIP: the three-Sonic-Pi session (TUTTI_SONICPI_SESSION=0)"
    exit 0
fi
PLAY=${TUTTI_SONICPI_PLAY:-40}
run_bounded $((PLAY * 2 + 300)) python3 "$TOP/tests/e2e/sonicpi/timing.py" --tutti "$TUTTI" \
    --plugin-dir "$PLUGIN_DIR" --out "$WORK/timing" --play "$PLAY" >"$WORK/timing.log" 2>&1
rc=$?
grep -v '^{' "$WORK/timing.log"
[ $rc = 0 ] || fail "the Sonic Pi loops did not keep time (see above)"
ok "three Sonic Pi servers, ${PLAY} s: no silent bar, no note off the grid (the new tempo from the agreed beat), no late line, no error; leave and join again: nothing left behind, both journals"
